"""What the `snapzen ledger …` commands share: their options, reading an email from stdin,
and how a refusal (a shared email, the writer lock held) is told.

Emails are handed to snapzen.commands at once, which turns them into their HMAC reference;
they are never printed, logged or stored.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from snapzen.cli.common import fail
from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.commands.ledger_open import SubjectCollision

Since = Annotated[
    str | None,
    typer.Option(metavar="DATE", help="From this UTC date (YYYY-MM-DD) or ISO time, inclusive."),
]
Until = Annotated[
    str | None,
    typer.Option(metavar="DATE", help="Up to this UTC date (whole day) or ISO time, inclusive."),
]
Widget = Annotated[str | None, typer.Option(metavar="ID", help="Only this SnapEngage widget id.")]
Email = Annotated[
    str,
    typer.Option(
        metavar="EMAIL",
        help="The data subject's email ('-' reads it from stdin, keeping it out of shell "
        "history). Only its HMAC reference is used.",
    ),
]
OptionalEmail = Annotated[
    str | None,
    typer.Option(
        "--email",
        metavar="EMAIL",
        help="The person's email ('-' reads it from stdin); only its HMAC reference is kept.",
    ),
]
CaseIds = Annotated[
    list[str] | None,
    typer.Option(
        "--case", metavar="ID", help="Only this chat (case id) of the subject; repeatable."
    ),
]
TicketIds = Annotated[
    list[int] | None,
    typer.Option(
        "--ticket", metavar="ID", help="Only this Zendesk ticket of the subject; repeatable."
    ),
]
Received = Annotated[
    str | None,
    typer.Option(
        "--received",
        metavar="YYYY-MM-DD",
        help="Day the request was received (YYYY-MM-DD; default today, UTC): the Art. 12(3) "
        "deadline is one month later.",
    ),
]
LockWait = Annotated[
    float | None,
    typer.Option(
        "--lock-wait",
        hidden=True,  # before --wait; kept so scripts keep working
        help="Seconds to wait for a running sync to release the writer lock.",
    ),
]


def read_email(email: str) -> str:
    """The --email value, read from stdin for '-' (read once: stdin cannot be re-read)."""
    return sys.stdin.readline() if email == "-" else email


def lock_seconds(wait: bool, lock_wait: float | None = None) -> float:
    """--wait: as long as it takes; without it, at once (the --lock-wait seconds if given)."""
    return lock_wait if lock_wait is not None else (-1 if wait else 0)


def not_done(what: str) -> NoReturn:
    """A request is still outstanding when the lock is held: exit 1, not "nothing to do"."""
    fail(
        f"{what} NOT done: another snapzen run holds the writer lock; rerun with --wait to "
        "queue behind it",
        errors.EXIT_ABORTED,
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def refuse_shared(exc: SubjectCollision) -> NoReturn:
    """Exit 2 with the candidate chats of a shared reference: ids and dates, never names."""
    typer.echo(f"snapzen: {exc}; candidate chats:", err=True)
    for item in exc.candidates:
        typer.echo(
            f"  --case {item.case_id}  ticket {_cell(item.ticket_id) or '-'}  "
            f"started {_cell(item.started_at) or '-'}  widget {_cell(item.widget_id)}",
            err=True,
        )
    raise typer.Exit(errors.EXIT_USAGE)
