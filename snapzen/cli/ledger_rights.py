"""`snapzen ledger erase | access`: one person's erasure (Art. 17, withdrawal, objection) and
access pack (Art. 15, Art. 20). Thin over snapzen.commands.erase_person and .access_request;
a reference several people used is refused until narrowed (snapzen.cli.common). Only
`access` hands the email to Zendesk search (to find tickets snapzen does not know).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from snapzen import commands  # each module imported when first named (start-up time)
from snapzen.cli.common import (
    ActorOption,
    CaseIds,
    Email,
    LockWait,
    OptionalEmail,
    OverwriteOption,
    Received,
    RequestOption,
    TicketIds,
    WaitOption,
    actor_name,
    command,
    lock_seconds,
    new_file,
    opt,
    read_email,
    say,
    settings_from,
    show,
)
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import errors

app = typer.Typer()
EraseReason = StrEnum("EraseReason", "art17 consent_withdrawn objection")


@command(app, refused="erasure NOT done")
def erase(
    email: Email,
    dry_run: Annotated[
        bool, opt("", "Only list the tickets that would be deleted.", "--dry-run")
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
    delete_user: Annotated[
        bool,
        opt(
            "",
            "Also permanently delete the person's Zendesk end-user profile (name, email), "
            "found by exact email, once all their tickets are gone. Opt-in: the profile may "
            "hold data kept on other grounds (e.g. tickets not from chat). Agents and admins "
            "are never deleted (reported, exit 3). With --dry-run the profile is looked up "
            "(read-only) and the user ids that would be deleted are printed.",
            "--delete-user",
        ),
    ] = False,
    reason: Annotated[
        EraseReason,
        typer.Option(
            "--reason",
            help="The request answered: art17 (erasure, Art. 17(1)), "
            "consent_withdrawn (Art. 7(3)) or objection (Art. 21); journalled with its "
            "Art. 12(3) deadline.",
        ),
    ] = EraseReason.art17,
    received: Received = None,
    case: CaseIds = None,
    ticket: TicketIds = None,
    request: Annotated[
        str | None,
        opt(
            "ID",
            "Answer this open erasure or objection request (`ledger requests open`) "
            "instead of recording a new one; its received date and clock apply.",
            "--request",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        opt(
            "DIR",
            "Directory for the erasure response to the person (erasure-response-ID.txt "
            "and .json, 0600). Default: responses/ beside the ledger database.",
            "--out",
        ),
    ] = None,
) -> None:
    """Art. 17: delete the person's Zendesk tickets and append `erased` events (chain stays
    valid; no email stored); journal the request (even when nothing is found) and the
    erasure (in the erasure journal outside the database, re-applied after a restore).
    Tickets under a legal hold are kept. Safe to rerun: erased tickets are skipped.

    Examples:

    ```
    $ snapzen ledger erase --email person@example.com --dry-run
    $ snapzen ledger erase --email - --wait --actor dpo < request.txt
    ```
    """
    settings = settings_from()
    answered = commands.erase_person.erase_person(
        settings,
        read_email(email),
        dry_run=dry_run,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait, lock_wait),
        delete_user=delete_user,
        reason=reason.value,
        received=received,
        cases=case,
        tickets=ticket,
        request=request,
        out=out,
        # What the erasure did (or, dry, would do), said before the response is written.
        on_erased=lambda e: say(
            summaries.said("erased", e=e, blocked=summaries.still_naming(e.result))
        ),
    )
    say(summaries.said("erase_response", a=answered))
    if answered.result.partial:
        raise typer.Exit(errors.EXIT_PARTIAL)


@command(app, refused="access pack NOT done")
def access(
    out: Annotated[Path, opt("DIR", "Directory for the pack's two files.", "--out")],
    case: Annotated[
        list[str] | None,
        opt(
            "ID",
            "A SnapEngage case id; with --email, only this chat of theirs (repeatable).",
            "--case",
        ),
    ] = None,
    ticket: Annotated[
        list[int] | None,
        opt(
            "ID",
            "A Zendesk ticket id; with --email, only this ticket of theirs (repeatable).",
            "--ticket",
        ),
    ] = None,
    email: OptionalEmail = None,
    received: Received = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
    overwrite: OverwriteOption = False,
    include_ticket: Annotated[
        list[int] | None,
        opt(
            "ID",
            "A Zendesk ticket snapzen did not create, found by --email search, that you "
            "have reviewed for other people's data: put it in the pack (repeatable). "
            "Unreviewed ones are only listed.",
            "--include-ticket",
        ),
    ] = None,
    request: RequestOption = None,
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
    access_request = commands.access_request
    cases, tickets = case or [], ticket or []
    access_request.check_target(cases, tickets, email)
    for name in access_request.PACK_FILES:  # evidence: never replaced silently
        new_file(out / name, overwrite)
    settings = settings_from()
    result = access_request.answer(  # a shared email: refused, nothing written or recorded
        settings,
        out,
        cases=cases,
        tickets=tickets,
        email=read_email(email),
        received=received,
        request=request,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait, lock_wait),
        include_tickets=include_ticket or [],
    )
    show(
        summaries.said("access", r=result),
        code=errors.EXIT_OK if result.complete else errors.EXIT_PARTIAL,
    )
