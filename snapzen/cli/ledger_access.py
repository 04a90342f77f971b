"""`snapzen ledger access`: one person's access pack (Art. 15, Art. 20). Thin over
snapzen.commands.access_request; only this command hands the email to Zendesk search (to find
tickets snapzen does not know)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    OverwriteOption,
    WaitOption,
    actor_name,
    command,
    new_file,
    opt,
    say,
    settings_from,
)
from snapzen.cli.ledger_options import LockWait, OptionalEmail, Received, lock_seconds, read_email
from snapzen.support import errors

app = typer.Typer()

AccessCases = Annotated[
    list[str] | None,
    opt("ID", "A SnapEngage case id; with --email, only this chat of theirs (repeatable).",
        "--case"),
]  # fmt: skip
AccessTickets = Annotated[
    list[int] | None,
    opt("ID", "A Zendesk ticket id; with --email, only this ticket of theirs (repeatable).",
        "--ticket"),
]  # fmt: skip
RequestOpt = Annotated[
    str | None,
    opt("ID", "Answer this open request (`ledger requests open`) instead of recording a new "
        "one; its received date and clock apply.", "--request"),
]  # fmt: skip
IncludeTickets = Annotated[
    list[int] | None,
    opt("ID", "A Zendesk ticket snapzen did not create, found by --email search, that you have "
        "reviewed for other people's data: put it in the pack (repeatable). Unreviewed ones "
        "are only listed.", "--include-ticket"),
]  # fmt: skip


@command(app, refused="access pack NOT done")
def access(
    out: Annotated[Path, opt("DIR", "Directory for the pack's two files.", "--out")],
    case: AccessCases = None,
    ticket: AccessTickets = None,
    email: OptionalEmail = None,
    received: Received = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
    overwrite: OverwriteOption = False,
    include_ticket: IncludeTickets = None,
    request: RequestOpt = None,
    config: ConfigOption = None,
) -> None:
    """Art. 15/20 access pack: DIR/subject.json and DIR/subject.html with every ticket and
    transcript (archived ones too), every ledger row and decision, chats not sent, and the
    [record] information; appends `access_provided` (with the SHA-256) and journals the
    request. Exit 3 when a ticket could not be read from Zendesk (rerun). An email several
    people used is refused (exit 2, candidate chats listed) until narrowed by --case or
    --ticket, as for erasure. Refused (exit 2) while a [record] field the person must be
    told is empty. SnapEngage's own copy of each chat it still holds is included; Zendesk
    tickets snapzen did not create are listed for review, not included, until named with
    --include-ticket.

    Examples:

    ```
    $ snapzen ledger access --email - --out pack-2026-02-01/ < request.txt
    $ snapzen ledger access --case CASE_ID --out pack/ --received 2026-01-28
    ```
    """
    # Lazy: start-up time (the pack imports the ledger, the HTTP stack and the models).
    from snapzen.commands import access_request, summaries

    cases, tickets = case or [], ticket or []
    access_request.check_target(cases, tickets, email)
    for name in access_request.PACK_FILES:  # evidence: never replaced silently
        new_file(out / name, overwrite)
    settings = settings_from(config)
    result = access_request.answer(  # a shared email: refused, nothing written or recorded
        settings, out, cases=cases, tickets=tickets,
        email=read_email(email) if email is not None else None, received=received,
        request=request, actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait, lock_wait), include_tickets=include_ticket or [],
    )  # fmt: skip
    say(summaries.access_lines(result))
    if not result.complete:
        raise typer.Exit(errors.EXIT_PARTIAL)
