"""What the `snapzen ledger …` commands share: their options and reading an email from stdin
(a refusal, a shared email or the writer lock held, is told by snapzen.cli.common).

Emails are handed to snapzen.commands at once, which turns them into their HMAC reference;
they are never printed, logged or stored.
"""

from __future__ import annotations

import sys
from typing import Annotated

from snapzen.cli.common import not_done as not_done
from snapzen.cli.common import opt
from snapzen.cli.common import refuse_shared as refuse_shared

Since = Annotated[
    str | None, opt("DATE", "From this UTC date (YYYY-MM-DD) or ISO time, inclusive.")
]
Until = Annotated[
    str | None, opt("DATE", "Up to this UTC date (whole day) or ISO time, inclusive.")
]
Widget = Annotated[str | None, opt("ID", "Only this SnapEngage widget id.")]
Email = Annotated[
    str,
    opt("EMAIL", "The data subject's email ('-' reads it from stdin, keeping it out of shell "
        "history). Only its HMAC reference is used."),
]  # fmt: skip
OptionalEmail = Annotated[
    str | None,
    opt("EMAIL", "The person's email ('-' reads it from stdin); only its HMAC reference is kept.",
        "--email"),
]  # fmt: skip
CaseIds = Annotated[
    list[str] | None, opt("ID", "Only this chat (case id) of the subject; repeatable.", "--case")
]
TicketIds = Annotated[
    list[int] | None, opt("ID", "Only this Zendesk ticket of the subject; repeatable.", "--ticket")
]
Received = Annotated[
    str | None,
    opt("YYYY-MM-DD", "Day the request was received (YYYY-MM-DD; default today, UTC): the "
        "Art. 12(3) deadline is one month later.", "--received"),
]  # fmt: skip
LockWait = Annotated[
    float | None,
    # Hidden: before --wait; kept so scripts keep working.
    opt("", "Seconds to wait for a running sync to release the writer lock.", "--lock-wait",
        hidden=True),
]  # fmt: skip


def read_email(email: str) -> str:
    """The --email value, read from stdin for '-' (read once: stdin cannot be re-read)."""
    return sys.stdin.readline() if email == "-" else email


def lock_seconds(wait: bool, lock_wait: float | None = None) -> float:
    """--wait: as long as it takes; without it, at once (the --lock-wait seconds if given)."""
    return lock_wait if lock_wait is not None else (-1 if wait else 0)
