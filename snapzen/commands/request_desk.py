"""`snapzen ledger requests [open | pause | resume | extend | close]`: the request clock; and
`snapzen ledger notices [done]`: the Art. 19 notices an erasure still owes.

The listing is read-only. Each step is checked against the request's clock under the writer
lock (snapzen.ledger.rights.requests.Clock: no pause of a paused request, one extension only,
nothing after the close), appended to the chain in one transaction, then the same event to
the rights journal outside the database (snapzen.ledger.rights.erasure_journal), so a
restored backup gets it back. Only the person's HMAC reference is stored, never an email.

An erasure records each recipient snapzen could not erase at itself (SnapEngage, a recipient
of kind other) as ``to_notify`` (snapzen.commands.erase_request). The notice stays open,
listed by `ledger notices`, until the operator has told that recipient and records it with
`ledger notices done ID --when DATE`: a ``notified`` event that closes the notice, chained and
journalled (so a restored backup has it too). Ids, dates and recipient names only.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from typing import Any

import sqlite_utils

from snapzen.commands.ledger_open import locked, received_day, subject_of
from snapzen.ledger.rights import erasure_journal, notices, period_keys, requests
from snapzen.ledger.rights.notices import Notice as Notice  # for the CLI
from snapzen.ledger.rights.requests import CLOSED, EXTENDED, PAUSED, RESUMED, ClockRefused
from snapzen.ledger.rights.requests import Request as Request  # for the CLI
from snapzen.ledger.store.db import open_ledger
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key

# The steps `ledger requests pause | resume | extend | close` take, by the command's name.
STEPS = {"paused": PAUSED, "resumed": RESUMED, "extended": EXTENDED, "closed": CLOSED}


def listing(settings: Settings, today: date) -> list[Request]:
    """Every request: open ones first, by deadline."""
    with open_ledger(settings.ledger, read_only=True) as db:
        return list(requests.list_requests(db.conn, today=today))


def _first_chat(
    conn: sqlite3.Connection, ref: str | None, case: str | None, ticket: int | None
) -> tuple[str | None, str | None]:
    """(subject_ref, UTC day of the person's first chat) as the ledger knows them."""
    by = ("subject_ref", ref) if ref else ("case_id", case) if case else ("ticket_id", ticket)
    sql = f"SELECT subject_ref, MIN(day) FROM cases WHERE {by[0]} = ?"
    found = conn.execute(sql, (by[1],)).fetchone()
    return found[0] or ref, found[1]


def _write(
    db: sqlite_utils.Database,
    settings: Settings,
    event: str,
    request: tuple[str, str | None],
    *,
    actor: str,
    now: datetime,
    details: dict[str, Any],
) -> Request:
    """Append the event of ``request`` (its id and reference), chained and journalled
    (erasure_journal.chained); returns the request as it is now."""
    key = require_ledger_key(settings) if settings.ledger.key is not None else None
    request_id, ref = request
    path = settings.ledger.erasure_journal_path
    with erasure_journal.chained(db, path, key, actor=actor, now=now) as recorder:
        recorder.append(event, request_id, ref, details)
    return requests.found(db.conn, request_id, now.date())


def _checked(request: Request, step: str, day: date, months: int) -> None:
    try:
        request.clock.apply(step, day, months)
    except ClockRefused as exc:
        raise errors.ConfigError(f"request {request.request_id}: {exc}") from None


def open_request(
    settings: Settings,
    *,
    kind: str,
    received: str,
    email: str | None,
    case: str | None,
    ticket: int | None,
    actor: str,
    wait_seconds: float,
) -> Request:
    """Record the receipt of a request: its clock starts on ``received``, which is not in
    the future nor before the person's first chat (exit 2)."""
    if kind not in requests.OPEN_KINDS:
        raise errors.ConfigError(f"--type {kind!r}: one of {', '.join(requests.OPEN_KINDS)}")
    day = received_day(received)
    email_ref = subject_of(settings, email) if email is not None else None
    scope: dict[str, Any] = {"via": requests.CLOCK, "case": case, "ticket": ticket}
    request_id = requests.new_request_id()
    with locked(settings, wait_seconds) as db:
        now = clock.now()  # once the lock is held: a step is dated when it is chained
        ref, first = _first_chat(db.conn, email_ref, case, ticket)
        if first and day.isoformat() < first[:10]:
            raise errors.ConfigError(
                f"--received {day} is before this person's first chat in the ledger "
                f"({first[:10]}): check the date the request arrived"
            )
        scope = {k: v for k, v in scope.items() if v is not None}
        details = requests.request_details(kind, day, requests.OPEN, "received", scope)
        return _write(
            db, settings, requests.EVENT, (request_id, ref), actor=actor, now=now, details=details
        )


def step(
    settings: Settings,
    request_id: str,
    event: str,
    *,
    actor: str,
    wait_seconds: float,
    **details: Any,
) -> Request:
    """Pause, resume, extend or close a request (``event``: one of STEPS' values), checked
    against its clock (exit 2); ``details``: pause's reason, extend's reason (which the person
    is told, so never empty) and months, close's outcome and note. Closed after the deadline,
    it is late for ever."""
    if event == EXTENDED and not str(details.get("reason") or "").strip():
        raise errors.ConfigError("--reason is empty: the person must be told why")
    details = {k: v for k, v in details.items() if v}
    with locked(settings, wait_seconds) as db:
        now = clock.now()  # once the lock is held: a step is dated when it is chained
        request = requests.found(db.conn, request_id, now.date())
        _checked(request, event, now.date(), int(details.get("months", 0)))
        target = (request_id, request.subject_ref)
        if event != CLOSED:
            body = {"kind": request.kind, "via": requests.CLOCK, **details}
            return _write(db, settings, event, target, actor=actor, now=now, details=body)
        received, outcome = date.fromisoformat(request.received_on), str(details.pop("outcome"))
        extra = {"via": requests.CLOCK, **details}  # and the note, if any
        body = requests.request_details(request.kind, received, CLOSED, outcome, extra)
        return _write(db, settings, requests.EVENT, target, actor=actor, now=now, details=body)


def owed(settings: Settings) -> list[Notice]:
    """Every recipient still to be told of an erasure."""
    with open_ledger(settings.ledger, read_only=True) as db:
        return notices.open_notices(db.conn)


def record_told(
    settings: Settings, notice_id: str, *, when: str, actor: str, wait_seconds: float
) -> Notice:
    """The notice, recorded as given on ``when`` (YYYY-MM-DD); LockHeld when another snapzen
    holds the writer lock and ``wait_seconds`` is 0. ConfigError (exit 2): not a date, an
    unknown id, one already done or never owed, a day in the future or before it was owed."""
    try:
        day = date.fromisoformat(when)
    except ValueError:
        raise errors.ConfigError(f"--when {when!r} is not a date (YYYY-MM-DD)") from None
    key = require_ledger_key(settings)
    with locked(settings, wait_seconds) as db:
        now = clock.now()  # once the lock is held: the notice is dated when it is chained
        owed, done = notices.find(db.conn, notice_id)
        if owed is None:
            raise errors.ConfigError(
                f"no Art. 19 notice {notice_id} (see `snapzen ledger notices`)"
            )
        if owed.status != notices.TO_NOTIFY:
            raise errors.ConfigError(
                f"notice {notice_id}: {owed.recipient} was told already (snapzen)"
            )
        if done:
            raise errors.ConfigError(f"notice {notice_id}: already recorded as done")
        if day > now.date():
            raise errors.ConfigError(f"--when {day} is in the future (today is {now.date()})")
        if day < date.fromisoformat(owed.on):
            raise errors.ConfigError(f"--when {day} is before the notice was owed ({owed.on})")
        chained = db.execute("SELECT subject_ref FROM events WHERE seq = ?", (owed.seq,))
        # The person's lookup reference: the notice is chained keyed by its request period.
        person = period_keys.lookup_of(db.conn, str(chained.fetchone()[0]))
        how = f"told by {actor} (the operator)"
        told = Notice(owed.recipient, notices.NOTIFIED, day.isoformat(), how, closes=notice_id)
        journal = settings.ledger.erasure_journal_path
        with erasure_journal.chained(db, journal, key, actor=actor, now=now) as recorder:
            [stored] = notices.record(
                recorder, [told], request_id=owed.request_id, subject_ref=person
            )
    return stored
