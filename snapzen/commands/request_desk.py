"""`snapzen ledger requests [open | pause | resume | extend | close]`: the request clock as
the CLI drives it: read-only for the listing, under the writer lock for each step
(snapzen.commands.request_clock does the step)."""

from __future__ import annotations

from datetime import date
from typing import Any

from snapzen.commands import request_clock as steps
from snapzen.commands.ledger_open import locked, open_read, received_day, subject_of
from snapzen.ledger.rights import requests
from snapzen.ledger.rights.requests import EXTENDED, PAUSED, RESUMED
from snapzen.ledger.rights.requests import Request as Request  # for the CLI
from snapzen.support import clock
from snapzen.support.settings import Settings

# The steps `ledger requests pause | resume | extend` append, by the command's name.
STEPS = {"paused": PAUSED, "resumed": RESUMED, "extended": EXTENDED}


def listing(settings: Settings, today: date) -> list[Request]:
    """Every request: open ones first, by deadline."""
    return list(requests.list_requests(open_read(settings).conn, today=today))


def open_request(
    settings: Settings, *, kind: str, received: str, email: str | None, case: str | None,
    ticket: int | None, actor: str, wait_seconds: float,
) -> Request:  # fmt: skip
    """Record a request as received (its deadline one month later)."""
    day = received_day(received)
    ref = subject_of(settings, email) if email is not None else None
    target = steps.Target(subject_ref=ref, case_id=case, ticket_id=ticket)
    with locked(settings, wait_seconds) as db:
        return steps.open_request(
            db, settings, kind=kind, received=day, target=target, actor=actor, now=clock.now()
        )


def move(
    settings: Settings, request_id: str, *, event: str, details: dict[str, Any], actor: str,
    wait_seconds: float,
) -> Request:  # fmt: skip
    """Pause, resume or extend (``event``: one of STEPS' values)."""
    with locked(settings, wait_seconds) as db:
        return steps.move(
            db, settings, request_id, event=event, details=details, actor=actor,
            now=clock.now(),
        )  # fmt: skip


def close(
    settings: Settings, request_id: str, *, outcome: str, note: str | None, actor: str,
    wait_seconds: float,
) -> Request:  # fmt: skip
    """Record the answer: the clock stops for good."""
    with locked(settings, wait_seconds) as db:
        return steps.close(
            db, settings, request_id, outcome=outcome, note=note, actor=actor,
            now=clock.now(),
        )  # fmt: skip
