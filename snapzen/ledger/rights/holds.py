"""Legal holds (Art. 17(3)(e): establishment, exercise or defence of legal claims).

A hold keeps a case, a ticket or every ticket of one person out of the retention sweep and
out of erasure until it is removed. Holds are chained events (``hold_added`` /
``hold_removed``), never a mutable table, so when and why a ticket outlived its retention is
on the record. The latest event per target decides whether the hold is active.

Targets: ``case:<case id>``, ``ticket:<ticket id>``, ``subject:<HMAC ref>``; the email itself
is never stored, only its reference (chained keyed by the request period,
snapzen.ledger.rights.period_keys; ``active`` gives the lookup reference back).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import period_keys
from snapzen.support import clock

ADDED, REMOVED = Event.HOLD_ADDED, Event.HOLD_REMOVED


@dataclass(frozen=True)
class Hold:
    target: str  # case:ID | ticket:ID | subject:REF
    reason: str
    since: str
    seq: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HoldSet:
    """The active holds, oldest first, for checks by case, ticket and subject."""

    holds: list[Hold] = field(default_factory=list)

    def named(self, kind: str) -> set[str]:
        """What the holds of ``kind`` (case, ticket, subject) name."""
        return {h.target.removeprefix(kind + ":") for h in self.holds if h.target.startswith(kind)}

    def held(
        self,
        *,
        case_id: str | None = None,
        ticket_id: int | None = None,
        subject: str | None = None,
    ) -> bool:
        wanted = {f"case:{case_id}", f"ticket:{ticket_id}", f"subject:{subject}"}  # None: none
        return any(h.target in wanted for h in self.holds)


def target_for(
    *, case_id: str | None = None, ticket_id: int | None = None, subject: str | None = None
) -> str:
    if case_id is not None:
        return f"case:{case_id}"
    if ticket_id is not None:
        return f"ticket:{int(ticket_id)}"
    return f"subject:{subject}"


def change(
    conn: sqlite3.Connection, target: str, reason: str, *, add: bool, actor: str, now: datetime
) -> dict[str, Any] | None:
    """Place (``add``) or lift a hold on ``target``, inside the caller's transaction; None when
    that changes nothing (already held, or not held)."""
    if add and not reason.strip():
        raise ValueError("a hold needs a reason")
    if any(h.target == target for h in active(conn).holds) == add:
        return None
    kind, _, value = target.partition(":")
    return append_events(
        conn,
        event=ADDED if add else REMOVED,
        case_id=value if kind == "case" else target,
        subject_ref=value if kind == "subject" else None,
        ticket_id=int(value) if kind == "ticket" else None,
        recorded_at=clock.format(now),
        actor=actor,
        details={"target": target, "reason": reason.strip()},
    )[0]


def active(conn: sqlite3.Connection) -> HoldSet:
    latest: dict[str, tuple[str, Hold]] = {}
    rows = conn.execute(
        "SELECT seq, event, recorded_at, details FROM events WHERE event IN (?, ?) ORDER BY seq",
        (ADDED, REMOVED),
    )
    resolver = period_keys.Resolver(conn)
    for seq, event, at, text in rows:
        details = orjson.loads(text) if text else {}
        target = str(details.get("target"))
        kind, _, value = target.partition(":")
        if kind == "subject":  # chained keyed by the request period: the person's lookup ref
            lookup = resolver.resolve(value, str(event))
            if lookup is None:
                continue  # its period was forgotten (never while the hold was active)
            target = f"subject:{lookup}"
        latest[target] = (str(event), Hold(target, str(details.get("reason")), str(at), int(seq)))
    active = [hold for event, hold in latest.values() if event == ADDED]
    return HoldSet(sorted(active, key=lambda h: h.seq))
