"""`snapzen ledger access`: answer one person's access request (Art. 15, Art. 20) under the
writer lock, with the Zendesk and SnapEngage clients built from settings
(snapzen.commands.access writes the pack)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from snapzen.commands import clients
from snapzen.commands.access import AccessResult as AccessResult  # for the CLI
from snapzen.commands.access import write_pack
from snapzen.commands.access_checks import require_complete
from snapzen.commands.ledger_open import (
    attached,
    locked,
    received_day,
    refuse_request_with_received,
    subject_of,
)
from snapzen.support import errors
from snapzen.support.settings import Settings

PACK_FILES = ("subject.json", "subject.html")


def check_target(cases: list[str], tickets: list[int], email: str | None) -> None:
    """One case or one ticket; or an email, narrowed by any --case/--ticket of that person
    (needed when several people used it)."""
    if email is None and len(cases) + len(tickets) != 1:
        raise errors.ConfigError("give --email, or exactly one --case or --ticket")


def answer(
    settings: Settings, out: Path, *, cases: list[str], tickets: list[int], email: str | None,
    received: str | None, request: str | None, actor: str, wait_seconds: float,
    include_tickets: list[int],
) -> AccessResult:  # fmt: skip
    """Write and record the pack; LockHeld when another snapzen holds the writer lock,
    SubjectCollision (nothing written or recorded) for a shared email not narrowed."""
    require_complete(settings)  # exit 2 before anything is read, written or recorded
    ref = subject_of(settings, email) if email is not None else None
    day = received_day(received)
    refuse_request_with_received(request, received)
    with locked(settings, wait_seconds) as db:
        if request is not None:
            day = date.fromisoformat(attached(db, request, ("access",)).received_on)
        return write_pack(
            db, settings, clients.zendesk_from(settings), out, subject_ref=ref,
            case_ids=cases, ticket_ids=tickets, email=email, received_on=day, actor=actor,
            chats_reader=clients.snapengage_from(settings), include_tickets=include_tickets,
            request_id=request,
        )  # fmt: skip
