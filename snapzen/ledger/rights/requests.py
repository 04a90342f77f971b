"""The data-subject request journal: access, erasure, rectification, restriction, withdrawal
and objection requests, each with its Art. 12(3) clock.

Each request is a chain of events sharing one request id (in ``case_id``): ``request`` events
carry the date received and a status and outcome (the first one opens it, ``ledger requests
open`` or the command that acts on it; a ``closed`` one answers it); ``request_paused``,
``request_resumed`` and ``request_extended`` move its deadline (snapzen.ledger.rights.request_clock
does the arithmetic, from the events alone, so a request answered late says so for ever).
The chain holds them, so "we answered on time" and "we found nothing for this person" can
both be shown, and neither can be edited afterwards; each event is also a line of
the rights journal outside the database (snapzen.ledger.rights.erasure_journal), so a restored
backup gets back the requests made after it (re-appended with ``reapplied: true``).

Only the subject's HMAC reference is stored, never the email, and in the chain keyed by the
request period (snapzen.ledger.rights.period_keys): ``Request.subject_ref`` is the lookup
reference again, None once the period was forgotten. ``details`` holds the kind,
dates, status (``open`` until answered) and outcome counts.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import period_keys, request_clock
from snapzen.ledger.rights.request_clock import CLOSED as CLOSED
from snapzen.ledger.rights.request_clock import EXTENDED as EXTENDED
from snapzen.ledger.rights.request_clock import PAUSED as PAUSED
from snapzen.ledger.rights.request_clock import RESUMED as RESUMED
from snapzen.ledger.rights.request_clock import Step
from snapzen.support import clock
from snapzen.support.errors import ConfigError

EVENT = Event.REQUEST
EVENTS = (EVENT, PAUSED, RESUMED, EXTENDED)  # every event of a request (rights journal too)
KINDS = ("access", "erasure", "rectification", "restriction", "withdrawal", "objection")
OPEN_KINDS = ("access", "erasure", "rectification", "restriction", "objection")  # `open --type`
CLOCK = "requests"  # details.via of the events `ledger requests …` appends (not an erasure)
ERASURE_KINDS = ("erasure", "withdrawal", "objection")  # answered by `ledger erase`
# `ledger erase --reason` → the kind of request it answers (Art. 17(1)(a), 7(3), 21).
REASON_KINDS = {"art17": "erasure", "consent_withdrawn": "withdrawal", "objection": "objection"}
OPEN = "open"


def is_erasure_record(details: Mapping[str, Any]) -> bool:
    """A ``request`` event that records an erasure done (by `ledger erase`): not a receipt,
    pause or close of the request clock, nor an erasure a legal hold refused."""
    return (
        details.get("kind") in ERASURE_KINDS
        and details.get("via") != CLOCK
        and details.get("outcome") != "refused_legal_hold"
    )


def deadline(received: date) -> date:
    """Art. 12(3): "without undue delay and in any event within one month of receipt"."""
    return request_clock.add_months(received, 1)


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


@dataclass
class Request:
    request_id: str
    kind: str
    subject_ref: str | None
    received_on: str
    deadline: str
    status: str  # open | paused | closed
    outcome: str
    updated_at: str
    closed_late: bool = False
    extended_months: int = 0
    paused_days: int = 0
    seqs: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # event, at, seq, reason
    details: dict[str, Any] = field(default_factory=dict)
    clock: request_clock.Clock | None = None

    def overdue(self, today: date) -> bool:
        if self.clock is not None:
            return self.clock.overdue(today)
        return self.status == OPEN and date.fromisoformat(self.deadline) < today

    def as_dict(self, today: date | None = None) -> dict[str, Any]:
        found = {k: v for k, v in asdict(self).items() if k != "clock"}
        if today is not None:
            found["overdue"] = self.overdue(today)
        return found


def append(
    conn: sqlite3.Connection,
    event: str,
    *,
    request_id: str,
    subject_ref: str | None,
    actor: str,
    now: datetime,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """Append one event of a request (its ``access_provided`` or a step of its clock) inside
    the caller's transaction; returns the row."""
    return append_events(
        conn,
        event=event,
        case_id=request_id,
        subject_ref=subject_ref,
        recorded_at=clock.format(now),  # the event time; the column is NOT NULL
        actor=actor,
        details=dict(details),
    )[0]


def request_details(
    kind: str,
    received_on: date,
    status: str,
    outcome: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The details of a ``request`` event: its kind, dates, status and outcome."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; one of {KINDS}")
    if status not in (OPEN, CLOSED):
        raise ValueError(f"status must be {OPEN!r} or {CLOSED!r}")
    return {
        "kind": kind,
        "received_on": received_on.isoformat(),
        "deadline": deadline(received_on).isoformat(),
        "status": status,
        "outcome": outcome,
        **(details or {}),
    }


def record(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    kind: str,
    subject_ref: str | None,
    received_on: date,
    status: str,
    outcome: str,
    actor: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one ``request`` event inside the caller's transaction; returns the row."""
    body = request_details(kind, received_on, status, outcome, details)
    return append(
        conn,
        EVENT,
        request_id=request_id,
        subject_ref=subject_ref,
        actor=actor,
        now=now,
        details=body,
    )


_CORE = ("kind", "received_on", "deadline", "status", "outcome", "via")


def _step(event: str, details: Mapping[str, Any], day: date) -> Step | None:
    """The clock step of one event (None: an event that does not move the clock)."""
    if event in (PAUSED, RESUMED, EXTENDED):
        return Step(event, day, int(details.get("months", 2)))
    return Step(CLOSED, day) if details.get("status") == CLOSED else None


def list_requests(
    conn: sqlite3.Connection, subject_ref: str | None = None, today: date | None = None
) -> list[Request]:
    """Every request, its events folded through its clock; open ones first (by deadline),
    then closed ones, most recent first. ``today`` dates a pause still in progress."""
    marks = ", ".join("?" for _ in EVENTS)
    sql = (
        "SELECT seq, event, case_id, subject_ref, recorded_at, details FROM events "
        f"WHERE event IN ({marks})"
    )
    params: list[Any] = list(EVENTS)
    if subject_ref is not None:
        chained, refs = period_keys.match(conn, subject_ref)  # every period not forgotten
        sql += f" AND {chained}"
        params.extend(refs)
    resolver = period_keys.Resolver(conn)  # the person's lookup reference (None: forgotten)
    found: dict[str, Request] = {}
    for seq, event, request_id, chained_ref, at, text in conn.execute(
        sql + " ORDER BY seq", params
    ):
        details = orjson.loads(text) if text else {}
        day = date.fromisoformat(str(at)[:10])
        request = found.get(request_id)
        if request is None:
            if event != EVENT:
                continue  # a clock event of a request this ledger never received
            received = date.fromisoformat(str(details.get("received_on") or day))
            ref = resolver.resolve(chained_ref, str(event))
            request = found[request_id] = Request(
                str(request_id),
                str(details.get("kind")),
                ref,
                received.isoformat(),
                "",
                OPEN,
                "",
                str(at),
                clock=request_clock.Clock(received),
            )
        step = _step(str(event), details, day)
        if step is not None and request.clock is not None:
            # e.g. a second answer to a closed request: the chain keeps it, the clock does not
            with contextlib.suppress(request_clock.ClockRefused):
                request.clock = request.clock.apply(step)
        if event == EVENT:
            request.outcome = str(details.get("outcome", request.outcome))
        request.updated_at = str(at)
        request.seqs.append(int(seq))
        shown = {k: details.get(k) for k in ("reason", "outcome", "status")}
        request.events.append({"event": event, "at": str(at), "seq": int(seq), **shown})
        request.details.update({k: v for k, v in details.items() if k not in _CORE})
    for request in found.values():
        clock_ = request.clock or request_clock.Clock(date.fromisoformat(request.received_on))
        request.deadline = clock_.deadline(today).isoformat()
        request.status = clock_.status
        request.closed_late = clock_.closed_late
        request.extended_months = clock_.extended_months
        request.paused_days = clock_.paused_days
    open_ = sorted((r for r in found.values() if r.status != CLOSED), key=lambda r: r.deadline)
    closed = sorted(
        (r for r in found.values() if r.status == CLOSED), key=lambda r: r.updated_at, reverse=True
    )
    return open_ + closed


def get(conn: sqlite3.Connection, request_id: str, today: date | None = None) -> Request | None:
    return next((r for r in list_requests(conn, today=today) if r.request_id == request_id), None)


def found(conn: sqlite3.Connection, request_id: str, today: date) -> Request:
    """The request (ConfigError, exit 2, when the ledger has none of that id)."""
    request = get(conn, request_id, today)
    if request is None:
        raise ConfigError(f"no request {request_id!r} in the ledger (see `ledger requests`)")
    return request


def open_one(
    conn: sqlite3.Connection, request_id: str, today: date, kinds: tuple[str, ...] = ()
) -> Request:
    """An open (or paused) request, for `access`/`erase --request`; exit 2 otherwise."""
    request = found(conn, request_id, today)
    if request.status == CLOSED:
        raise ConfigError(f"request {request_id} is closed ({request.outcome})")
    if kinds and request.kind not in kinds:
        raise ConfigError(
            f"request {request_id} is a {request.kind} request, not {' or '.join(kinds)}"
        )
    return request
