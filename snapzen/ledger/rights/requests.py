"""The data-subject request journal: access, erasure, rectification, restriction, withdrawal
and objection requests, each with its Art. 12(3) clock.

Each request is a chain of events sharing one request id (in ``case_id``): ``request`` events
carry the date received and a status and outcome (the first one opens it, ``ledger requests
open`` or the command that acts on it; a ``closed`` one answers it); ``request_paused``,
``request_resumed`` and ``request_extended`` move its deadline (``Clock`` below does the
arithmetic, from the events alone, so a request answered late says so for ever).
The chain holds them, so "we answered on time" and "we found nothing for this person" can
both be shown, and neither can be edited afterwards; each event is also a line of
the rights journal outside the database (snapzen.ledger.rights.erasure_journal), so a restored
backup gets back the requests made after it (re-appended with ``reapplied: true``).

Only the subject's HMAC reference is stored, never the email, and in the chain keyed by the
request period (snapzen.ledger.rights.period_keys): ``Request.subject_ref`` is the lookup
reference again, None once the period was forgotten. ``details`` holds the kind,
dates, status (``open`` until answered) and outcome counts.

The Art. 12(3) clock: a request is answered "without undue delay and in any event within one
month of receipt"; the month may be extended "by two further months where necessary" once,
with reasons given to the person within the first month. While the controller waits for the
person (proof of identity, Art. 12(6), or a clarification) the clock stops: the days paused
are added to the deadline. ``Clock`` is pure arithmetic over the steps: the same events always
give the same answer, so "closed late" never changes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import period_keys
from snapzen.support import clock
from snapzen.support.clock import add_months
from snapzen.support.errors import ConfigError

# A step is named as the event that records it (``closed``: a ``request`` event closing it).
PAUSED, RESUMED, EXTENDED = Event.REQUEST_PAUSED, Event.REQUEST_RESUMED, Event.REQUEST_EXTENDED
CLOSED = "closed"
MAX_EXTENSION_MONTHS = 2


class ClockRefused(ValueError):
    """A step the request's state does not allow (pause twice, extend twice, ...)."""


@dataclass(frozen=True)
class Clock:
    received: date
    paused_days: int = 0  # days of finished pauses
    paused_since: date | None = None  # a pause in progress
    extended_months: int = 0
    closed_on: date | None = None

    def deadline(self, today: date | None = None) -> date:
        """Received + one month (+ the extension), + every day paused (up to ``today`` for
        a pause in progress: the deadline moves on while the clock is stopped)."""
        running = 0
        if self.paused_since is not None and today is not None:
            running = max((today - self.paused_since).days, 0)
        base = add_months(self.received, 1 + self.extended_months)
        return base + timedelta(days=self.paused_days + running)

    @property
    def status(self) -> str:
        if self.closed_on is not None:
            return "closed"
        return "paused" if self.paused_since is not None else "open"

    def overdue(self, today: date) -> bool:
        """Open (not paused, not closed) and past its deadline."""
        return self.status == "open" and today > self.deadline(today)

    @property
    def closed_late(self) -> bool:
        """Answered after its deadline: true for ever once so."""
        return self.closed_on is not None and self.closed_on > self.deadline(self.closed_on)

    def apply(self, step: str, day: date, months: int = 0) -> Clock:
        """The clock after ``step`` (named as the event that records it: PAUSED, RESUMED,
        EXTENDED by ``months``, CLOSED) on ``day``; ClockRefused when it makes no sense now."""
        if self.closed_on is not None:
            raise ClockRefused(f"the request was closed on {self.closed_on}")
        if day < self.received:
            raise ClockRefused(f"{day} is before the request was received ({self.received})")
        if step == PAUSED:
            if self.paused_since is not None:
                raise ClockRefused(f"the request is already paused (since {self.paused_since})")
            return replace(self, paused_since=day)
        if step == RESUMED:
            if self.paused_since is None:
                raise ClockRefused("the request is not paused")
            days = self.paused_days + (day - self.paused_since).days
            return replace(self, paused_days=days, paused_since=None)
        if step == EXTENDED:
            return self._extended(day, months)
        finished = self.apply(RESUMED, day) if self.paused_since else self
        return replace(finished, closed_on=day)  # CLOSED

    def _extended(self, day: date, months: int) -> Clock:
        if self.extended_months:
            raise ClockRefused("the request was already extended (Art. 12(3) allows it once)")
        if not 1 <= months <= MAX_EXTENSION_MONTHS:
            raise ClockRefused(f"an extension is 1 or {MAX_EXTENSION_MONTHS} further months")
        if day > self.deadline(day):
            raise ClockRefused(
                f"the deadline {self.deadline(day)} has passed: Art. 12(3) requires the "
                "person to be told of an extension within the first deadline"
            )
        return replace(self, extended_months=months)


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


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


@dataclass
class Request:
    request_id: str
    kind: str
    subject_ref: str | None
    clock: Clock
    outcome: str = ""
    updated_at: str = ""
    seqs: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # event, at, seq, reason
    details: dict[str, Any] = field(default_factory=dict)
    # From the clock, once every event is folded in (``today`` dates a pause in progress).
    received_on: str = ""
    deadline: str = ""
    status: str = OPEN  # open | paused | closed
    closed_late: bool = False
    extended_months: int = 0
    paused_days: int = 0

    def settle(self, today: date | None) -> Request:
        self.received_on, self.status = self.clock.received.isoformat(), self.clock.status
        self.deadline = self.clock.deadline(today).isoformat()
        self.closed_late, self.paused_days = self.clock.closed_late, self.clock.paused_days
        self.extended_months = self.clock.extended_months
        return self

    def overdue(self, today: date) -> bool:
        return self.clock.overdue(today)

    def as_dict(self, today: date | None = None) -> dict[str, Any]:
        found = {k: v for k, v in asdict(self).items() if k != "clock"}
        if today is not None:
            found["overdue"] = self.overdue(today)
        return found


@dataclass
class Recorder:
    """Chains the events of requests in one transaction (``conn``), by one ``actor`` at one
    moment, and keeps the rows the rights journal takes after the commit
    (snapzen.ledger.rights.erasure_journal.chained)."""

    conn: sqlite3.Connection
    actor: str
    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)

    def append(
        self,
        event: str,
        request_id: str,
        subject_ref: str | None,
        details: Mapping[str, Any],
        *,
        journal: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """One event of a request (a step of its clock, its ``access_provided``, an Art. 19
        notice); journalled too unless ``journal`` is False. Returns the row."""
        [row] = append_events(
            self.conn,
            event=event,
            case_id=request_id,
            subject_ref=subject_ref,
            recorded_at=clock.format(self.now),  # the event time; the column is NOT NULL
            actor=self.actor,
            details=dict(details),
            **fields,
        )
        if journal:
            self.rows.append(row)
        return row


def request_details(
    kind: str,
    received_on: date,
    status: str,
    outcome: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The details of a ``request`` event: its kind (one of KINDS), dates (the deadline: one
    month after receipt, Art. 12(3)), status (OPEN or CLOSED) and outcome."""
    return {
        "kind": kind,
        "received_on": received_on.isoformat(),
        "deadline": add_months(received_on, 1).isoformat(),
        "status": status,
        "outcome": outcome,
        **(details or {}),
    }


_CORE = ("kind", "received_on", "deadline", "status", "outcome", "via")


def _step(event: str, details: Mapping[str, Any]) -> tuple[str, int] | None:
    """The clock step of one event and its months (None: an event that does not move it)."""
    if event in (PAUSED, RESUMED, EXTENDED):
        return event, int(details.get("months", 2))
    return (CLOSED, 0) if details.get("status") == CLOSED else None


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
                str(request_id), str(details.get("kind")), ref, Clock(received)
            )
        step = _step(str(event), details)
        if step is not None:
            # e.g. a second answer to a closed request: the chain keeps it, the clock does not
            with contextlib.suppress(ClockRefused):
                request.clock = request.clock.apply(step[0], day, step[1])
        if event == EVENT:
            request.outcome = str(details.get("outcome", request.outcome))
        request.updated_at = str(at)
        request.seqs.append(int(seq))
        shown = {k: details.get(k) for k in ("reason", "outcome", "status")}
        request.events.append({"event": event, "at": str(at), "seq": int(seq), **shown})
        request.details.update({k: v for k, v in details.items() if k not in _CORE})
    every = [request.settle(today) for request in found.values()]
    open_ = sorted((r for r in every if r.status != CLOSED), key=lambda r: r.deadline)
    closed = sorted(
        (r for r in every if r.status == CLOSED), key=lambda r: r.updated_at, reverse=True
    )
    return open_ + closed


def found(conn: sqlite3.Connection, request_id: str, today: date) -> Request:
    """The request (ConfigError, exit 2, when the ledger has none of that id)."""
    every = list_requests(conn, today=today)
    request = next((r for r in every if r.request_id == request_id), None)
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
