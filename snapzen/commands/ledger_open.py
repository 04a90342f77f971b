"""How a ledger command opens the ledger for writing (under the writer lock; readers call
``open_ledger(settings.ledger, read_only=True)``) and names a person: the email's HMAC
reference, the day a request was received.

Emails are turned into their HMAC reference at once and never printed, logged or stored.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date

import sqlite_utils

from snapzen.ledger.rights.collisions import SubjectCollision as SubjectCollision  # for the CLI
from snapzen.ledger.rights.subjects import subject_ref
from snapzen.ledger.store import queries
from snapzen.ledger.store.db import locked_ledger
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key


def locked(
    settings: Settings, wait_seconds: float
) -> AbstractContextManager[sqlite_utils.Database]:
    """The ledger opened for writing once the writer lock is held (never before: a command
    queued behind a restore must write into the restored file): ``wait_seconds`` -1 waits as
    long as it takes, 0 not at all (LockHeld)."""
    return locked_ledger(settings.ledger, wait=wait_seconds != 0, timeout=wait_seconds)


def known_widget(settings: Settings, db: sqlite_utils.Database, widget: str | None) -> None:
    """A ``--widget`` filter names a configured widget or one the ledger holds rows of (an
    audit may ask about a widget since removed); anything else is a typo: exit 2."""
    if widget is None or widget in settings.snapengage.widgets:
        return
    if queries.widget_known(db.conn, widget):
        return
    raise errors.ConfigError(
        f"--widget {widget!r} is neither one of snapengage.widgets nor in the ledger"
    )


def subject_of(settings: Settings, email: str) -> str:
    """The HMAC reference of ``email`` under the ledger key; exit 2 for an invalid address
    (no reference is ever made from one, so nothing is recorded under it)."""
    ref = subject_ref(require_ledger_key(settings), email)
    if ref is None:
        raise errors.ConfigError(
            "--email is not a valid email address: no chats are filed under it"
        )
    return ref


def received_day(text: str | None) -> date:
    """--received as a date (default today, UTC); a day in the future is refused (exit 2)."""
    today = clock.now().date()
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise errors.ConfigError(f"--received {text!r} is not a date (YYYY-MM-DD)") from None
    if day > today:
        raise errors.ConfigError(f"--received {day} is in the future (today is {today})")
    return day


def refuse_request_with_received(request: str | None, received: str | None) -> None:
    if request is not None and received is not None:
        raise errors.ConfigError("--received with --request: the request has its own date")
