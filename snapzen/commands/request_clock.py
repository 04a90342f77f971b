"""`snapzen ledger requests open | pause | resume | extend | close`: the request clock.

Each command checks the step against the request's clock (snapzen.ledger.rights.request_clock: no
pause of a paused request, one extension only, nothing after the close), appends its event to
the chain in one transaction, then the same event to the rights journal outside the database
(snapzen.ledger.rights.erasure_journal), so a restored backup gets it back. The caller holds the
writer lock. Only the person's HMAC reference is stored, never an email.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.rights import erasure_journal, requests
from snapzen.ledger.rights.request_clock import ClockRefused, Step
from snapzen.ledger.store.db import transaction
from snapzen.support import errors
from snapzen.support.settings import Settings, require_ledger_key


@dataclass(frozen=True)
class Target:
    """Whom a request is about: any of an email's reference, a chat or a ticket."""

    subject_ref: str | None = None
    case_id: str | None = None
    ticket_id: int | None = None


def first_chat(conn: sqlite3.Connection, target: Target) -> tuple[str | None, str | None]:
    """(subject_ref, UTC day of the person's first chat) as the ledger knows them."""
    if target.subject_ref is not None:
        row = conn.execute(
            "SELECT MIN(day) FROM cases WHERE subject_ref = ?", (target.subject_ref,)
        ).fetchone()
        return target.subject_ref, row[0] if row else None
    value: str | int | None
    if target.case_id is not None:
        column, value = "case_id", target.case_id
    else:
        column, value = "ticket_id", target.ticket_id
    if value is None:
        return None, None
    row = conn.execute(
        f"SELECT subject_ref, MIN(day) FROM cases WHERE {column} = ?", (value,)
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def check_received(received: date, today: date, first: str | None) -> None:
    """A request is not received in the future, nor before the person's first chat."""
    if received > today:
        raise errors.ConfigError(f"--received {received} is in the future (today is {today})")
    if first and received.isoformat() < first[:10]:
        raise errors.ConfigError(
            f"--received {received} is before this person's first chat in the ledger "
            f"({first[:10]}): check the date the request arrived"
        )


def _journal(db: sqlite_utils.Database, settings: Settings) -> bytes | None:
    """The ledger key when there is one; an edited journal refuses the step (exit 2) first."""
    if settings.ledger.key is None:
        return None
    key = require_ledger_key(settings)
    erasure_journal.prepare(settings.ledger.erasure_journal_path, key, db.conn)
    return key


def _journalled(settings: Settings, key: bytes | None, row: dict[str, Any]) -> None:
    if key is not None:
        erasure_journal.append_requests(settings.ledger.erasure_journal_path, key, [row])


def open_request(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    kind: str,
    received: date,
    target: Target,
    actor: str,
    now: datetime,
) -> requests.Request:
    """Record the receipt of a request: its clock starts on ``received``."""
    if kind not in requests.OPEN_KINDS:
        raise errors.ConfigError(f"--type {kind!r}: one of {', '.join(requests.OPEN_KINDS)}")
    ref, first = first_chat(db.conn, target)
    check_received(received, now.date(), first)
    key = _journal(db, settings)
    request_id = requests.new_request_id()
    scope: dict[str, Any] = {"via": requests.CLOCK}
    if target.case_id is not None:
        scope["case"] = target.case_id
    if target.ticket_id is not None:
        scope["ticket"] = target.ticket_id
    with transaction(db) as conn:
        row = requests.record(
            conn, request_id=request_id, kind=kind, subject_ref=ref, received_on=received,
            status=requests.OPEN, outcome="received", actor=actor, now=now, details=scope,
        )  # fmt: skip
    _journalled(settings, key, row)
    return _found(db, request_id, now)


def _found(db: sqlite_utils.Database, request_id: str, now: datetime) -> requests.Request:
    request = requests.get(db.conn, request_id, now.date())
    if request is None:
        raise errors.ConfigError(f"no request {request_id!r} in the ledger (see `ledger requests`)")
    return request


def open_one(
    db: sqlite_utils.Database, request_id: str, now: datetime, kinds: tuple[str, ...] = ()
) -> requests.Request:
    """An open (or paused) request, for `access`/`erase --request`; exit 2 otherwise."""
    request = _found(db, request_id, now)
    if request.status == requests.CLOSED:
        raise errors.ConfigError(f"request {request_id} is closed ({request.outcome})")
    if kinds and request.kind not in kinds:
        raise errors.ConfigError(
            f"request {request_id} is a {request.kind} request, not {' or '.join(kinds)}"
        )
    return request


def _checked(request: requests.Request, step: Step) -> None:
    try:
        if request.clock is not None:
            request.clock.apply(step)
    except ClockRefused as exc:
        raise errors.ConfigError(f"request {request.request_id}: {exc}") from None


def move(
    db: sqlite_utils.Database,
    settings: Settings,
    request_id: str,
    *,
    event: str,
    details: dict[str, Any],
    actor: str,
    now: datetime,
) -> requests.Request:
    """Pause, resume or extend a request (``event`` one of requests.PAUSED/RESUMED/EXTENDED)."""
    request = _found(db, request_id, now)
    what: dict[str, str] = {
        requests.PAUSED: "paused",
        requests.RESUMED: "resumed",
        requests.EXTENDED: "extended",
    }
    _checked(request, Step(what[event], now.date(), int(details.get("months", 0))))
    key = _journal(db, settings)
    with transaction(db) as conn:
        row = requests.record_step(
            conn, event=event, request=request, actor=actor, now=now, details=details
        )
    _journalled(settings, key, row)
    return _found(db, request_id, now)


def close(
    db: sqlite_utils.Database,
    settings: Settings,
    request_id: str,
    *,
    outcome: str,
    note: str | None,
    actor: str,
    now: datetime,
) -> requests.Request:
    """Answer a request: its clock stops for good; answered after the deadline, it is late."""
    request = _found(db, request_id, now)
    _checked(request, Step("closed", now.date()))
    key = _journal(db, settings)
    extra: dict[str, Any] = {"via": requests.CLOCK}
    if note:
        extra["note"] = note
    with transaction(db) as conn:
        row = requests.record(
            conn, request_id=request_id, kind=request.kind, subject_ref=request.subject_ref,
            received_on=date.fromisoformat(request.received_on), status=requests.CLOSED,
            outcome=outcome, actor=actor, now=now, details=extra,
        )  # fmt: skip
    _journalled(settings, key, row)
    return _found(db, request_id, now)
