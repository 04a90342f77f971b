"""Forgetting a request period: the evidence of answering people, once it has served.

The rows that record a person's requests and what was done (snapzen.ledger.rights.period_keys,
``EVIDENCE_EVENTS``) are keyed by the request period ``req-YYYY-MM``, the UTC month they were
recorded. They are the controller's evidence that the person was answered, and on time
(Art. 5(2), 12(3)): kept while a complaint to the regulator or a claim about that answer could
still be brought, ``record.request_evidence_years`` after the last step of each request of the
period, then forgotten like a month of chats (snapzen.ledger.rights.forget: journal line
first, then one transaction destroying the key and the index rows, and a chained
``period_forgotten`` event with the request ids, never a reference), and the
``erased_subjects`` rows of its erasures deleted; last, the rights journal is rewritten
without its requests' lines (snapzen.ledger.rights.journal_file).

A period is kept (``refusal`` says why) while:

- ``open``: one of its requests is not closed (open or paused);
- ``retention``: the last step of one of its requests, or any row of the period, is younger
  than the retention;
- ``notice``: an Art. 19 notice of one of its requests is still owed (``ledger notices``);
- ``hold``: a legal hold placed in the period is active, or an active hold names one of its
  people;
- ``copy``: an erasure of the period is needed by a registered copy (``<ledger>.copies.jsonl``)
  made before it and still at its path. Restoring that copy brings back the person's chats
  unmarked; ``erased_subjects`` is what keeps them from being sent again, so it must outlive
  every such copy;
- ``snapengage``: SnapEngage may still hold a chat the erasure covered (the erasure plus
  ``snapengage.retention_days``): a restored cursor could fetch it again, and only
  ``erased_subjects`` withholds it.

Pure reads of the database; the caller (snapzen.commands.retention_forget) supplies the
copies register and does the writing through snapzen.ledger.rights.forget.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import notices, period_keys, requests
from snapzen.ledger.rights.holds import HoldSet
from snapzen.ledger.store.cursor_rules import snapengage_holds
from snapzen.policy.transform import add_years
from snapzen.support import clock

OPEN, RETENTION, NOTICE, HOLD, COPY, SNAPENGAGE = (
    "open",
    "retention",
    "notice",
    "hold",
    "copy",
    "snapengage",
)


@dataclass(frozen=True)
class Copy:
    """A registered copy of the ledger (snapzen.commands.copies): when made, still there."""

    made_at: str
    exists: bool


@dataclass(frozen=True)
class Rule:
    years: int  # record.request_evidence_years
    snapengage_days: int  # snapengage.retention_days
    copies: tuple[Copy, ...] = ()


@dataclass
class Evidence:
    """What a request period holds: its rows (seq, recorded_at), request ids, people."""

    period: str
    seqs: set[int]
    last: str
    request_ids: set[str]
    lookups: set[str]


def evidence(conn: sqlite3.Connection, period: str) -> Evidence:
    """The rows of the period: those whose reference is indexed under it (a legacy reference
    is shared by periods: only its rows recorded in this month). A row's request: an erasure
    names it in its details, a hold none, any other row is the request's own (``case_id``)."""
    rows = conn.execute(
        f"""SELECT e.seq, e.recorded_at, p.lookup_ref,
                   CASE WHEN e.event IN {period_keys.HOLDS_SQL} THEN NULL
                        WHEN e.event = '{Event.ERASED.value}'
                        THEN json_extract(e.details, '$.request_id')
                        ELSE e.case_id END
            FROM events e JOIN subject_periods p ON p.chain_ref = e.subject_ref
            WHERE p.period = ? AND e.event IN {period_keys.EVIDENCE_SQL}
              AND ? || substr(e.recorded_at, 1, 7) = p.period""",
        (period, period_keys.REQUEST_PREFIX),
    ).fetchall()
    found = Evidence(period, set(), "", set(), set())
    for seq, at, lookup, request_id in rows:
        found.seqs.add(int(seq))
        found.last = max(found.last, str(at))
        found.lookups.add(str(lookup))
        if request_id:
            found.request_ids.add(str(request_id))
    return found


def refusal(
    conn: sqlite3.Connection, found: Evidence, as_of: date, rule: Rule, held: HoldSet
) -> str | None:
    """Why the period must be kept as of ``as_of`` (one of ``WHY``), or None: forget it."""
    asked = [
        r for r in requests.list_requests(conn, today=as_of) if r.request_id in found.request_ids
    ]
    if any(r.status != requests.CLOSED for r in asked):
        return OPEN
    last = max([found.last, *(r.updated_at for r in asked)]) or found.period[4:] + "-28"
    if add_years(date.fromisoformat(last[:10]), rule.years) > as_of:
        return RETENTION
    if any(n.request_id in found.request_ids for n in notices.open_notices(conn)):
        return NOTICE
    if any(h.seq in found.seqs for h in held.holds) or found.lookups & held.named("subject"):
        return HOLD
    # The erasure record (erased_subjects) is what withholds the person's chats when they come
    # back: from a restored copy made before the erasure (it holds them unmarked), or from
    # SnapEngage fetching a chat it still holds. It must outlive both.
    for erased_at in _erasures(conn, found.request_ids):
        # Instants to the second (the stamps carry no more): a copy made in the erasure's
        # second may predate its end, so it may hold the person (as copies.holding lists it).
        erased = clock.parse_second(erased_at)
        if any(c.exists and clock.parse_second(c.made_at) <= erased for c in rule.copies):
            return COPY
        if snapengage_holds(date.fromisoformat(erased_at[:10]), as_of, rule.snapengage_days):
            return SNAPENGAGE
    return None


def _erasures(conn: sqlite3.Connection, request_ids: Collection[str]) -> list[str]:
    """When each ``erased_subjects`` row of these requests was erased."""
    marks = ", ".join("?" for _ in request_ids)
    if not marks:
        return []
    rows = conn.execute(
        f"SELECT erased_at FROM erased_subjects WHERE request_id IN ({marks})", list(request_ids)
    ).fetchall()
    return [str(row[0]) for row in rows]


def plan(conn: sqlite3.Connection, as_of: date, rule: Rule, held: HoldSet) -> list[dict[str, Any]]:
    """The request periods a sweep as of ``as_of`` forgets: [{period, requests}], oldest
    first."""
    due = []
    for period in filter(period_keys.is_request_period, period_keys.held(conn)):
        found = evidence(conn, period)
        if refusal(conn, found, as_of, rule, held) is None:
            due.append({"period": period, "requests": len(found.request_ids)})
    return due


def delete(conn: sqlite3.Connection, period: str) -> dict[str, Any]:
    """Inside the caller's transaction, after the key was destroyed: the period's requests
    (ids, for the chained event and verify), their ``erased_subjects`` rows and the index
    rows deleted; the counts."""
    ids = sorted(evidence(conn, period).request_ids)
    marks = ", ".join("?" for _ in ids) or "NULL"
    erased = conn.execute(
        f"DELETE FROM erased_subjects WHERE request_id IN ({marks})", ids
    ).rowcount
    refs = conn.execute("DELETE FROM subject_periods WHERE period = ?", (period,)).rowcount
    return {
        "requests_forgotten": len(ids),
        "request_ids": ids,  # verify accepts their erased_subjects rows gone; ids only
        "erasures_forgotten": erased,
        "references_unlinked": refs,
    }
