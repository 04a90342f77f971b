"""`snapzen ledger subject | erase`: one person's transfers (Art. 15) and their erasure
(Art. 17, withdrawal, objection). Thin over snapzen.commands.ledger_queries and
.erase_person; a reference several people used is refused until narrowed."""

from __future__ import annotations

import sys
from collections.abc import Collection
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    WaitOption,
    actor_name,
    evidence_settings,
    handle_errors,
    settings_from,
)
from snapzen.cli.ledger_audit import Columns, FormatOption, ListFormat, Wide, emit, list_format
from snapzen.cli.ledger_options import (
    CaseIds,
    Email,
    LockWait,
    TicketIds,
    lock_seconds,
    not_done,
    read_email,
    refuse_shared,
)
from snapzen.cli.tables import choose_columns
from snapzen.commands import ledger_terms as terms  # light: the options' names and defaults
from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.commands.erase_person import Answered, Erased, UserErasure

app = typer.Typer()

# Art. 15(1)(c),(d),(2) at a glance: when, to whom, where, on what basis, kept how long.
SUBJECT_TABLE = (
    "recorded_at", "event", "recipient", "destination_country", "legal_basis",
    "retention_until",
)  # fmt: skip


class EraseReason(StrEnum):
    art17 = "art17"
    consent_withdrawn = "consent_withdrawn"
    objection = "objection"


@app.command()
@handle_errors
def subject(
    email: Email,
    fmt: FormatOption = None,
    json_flag: JsonFlag = False,
    columns: Columns = None,
    wide: Wide = False,
    case: CaseIds = None,
    ticket: TicketIds = None,
    config: ConfigOption = None,
) -> None:
    """Every transfer of one person (Art. 15(1)(c),(d),(2)): recipients, countries, basis,
    retention. Found through the HMAC reference; the email itself is never printed. A
    reference several people used is refused (exit 2) until narrowed by --case/--ticket.

    Examples:

    ```
    $ printf '%s' person@example.com | snapzen ledger subject --email -
    $ snapzen ledger subject --email person@example.com --format json
    ```
    """
    # Lazy: start-up time (sqlite_utils, email_validator).
    from snapzen.commands import ledger_queries
    from snapzen.commands.ledger_open import SubjectCollision

    fmt = list_format(fmt, json_flag)
    shown = choose_columns(
        columns,
        wide,
        default=SUBJECT_TABLE,
        wide_set=terms.SUBJECT_COLUMNS[:11],
        known=terms.SUBJECT_COLUMNS,
    )
    settings = evidence_settings(config)
    try:
        found = ledger_queries.subject_rows(settings, read_email(email), case, ticket)
    except SubjectCollision as exc:
        refuse_shared(exc)
    if fmt is ListFormat.table:
        typer.echo(f"subject reference: {found.ref}", err=not sys.stdout.isatty())
    count = emit(
        found.rows,
        fmt,
        columns=shown if columns or wide else terms.SUBJECT_COLUMNS,
        table_columns=shown,
        title="Transfers of this data subject",
    )
    if count == 0:
        typer.echo(
            "no ledger rows for this subject (chats outside the restricted region are not "
            "recorded as transfers)",
            err=True,
        )
    # Also when some rows remain: the person's rows of a forgotten month or request period
    # are not among them, and the reader must know why.
    if (why := found.forgotten()) is not None:
        typer.echo(why, err=True)


@app.command("erase")
@handle_errors
def erase_(
    email: Email,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", metavar="", help="Only list the tickets that would be deleted."),
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
    delete_user: Annotated[
        bool,
        typer.Option(
            "--delete-user",
            metavar="",
            help="Also permanently delete the person's Zendesk end-user profile (name, email), "
            "found by exact email, once all their tickets are gone. Opt-in: the profile may "
            "hold data kept on other grounds (e.g. tickets not from chat). Agents and admins "
            "are never deleted (reported, exit 3). With --dry-run the profile is looked up "
            "(read-only) and the user ids that would be deleted are printed.",
        ),
    ] = False,
    reason: Annotated[
        EraseReason,
        typer.Option(
            "--reason",
            help="The request answered: art17 (erasure, Art. 17(1)), consent_withdrawn "
            "(Art. 7(3)) or objection (Art. 21); journalled with its Art. 12(3) deadline.",
        ),
    ] = EraseReason.art17,
    received: Annotated[
        str | None,
        typer.Option(
            "--received",
            metavar="YYYY-MM-DD",
            help="Day the request was received (YYYY-MM-DD; default today, UTC).",
        ),
    ] = None,
    case: CaseIds = None,
    ticket: TicketIds = None,
    request: Annotated[
        str | None,
        typer.Option(
            "--request",
            metavar="ID",
            help="Answer this open erasure or objection request (`ledger requests "
            "open`) instead of recording a new one; its received date and clock apply.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory for the erasure response to the person (erasure-response-ID.txt "
            "and .json, 0600). Default: responses/ beside the ledger database.",
        ),
    ] = None,
    config: ConfigOption = None,
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
    # Lazy: start-up time (the erasure imports the pydantic models and the HTTP stack).
    from snapzen.commands.erase_person import erase_person
    from snapzen.commands.ledger_open import SubjectCollision

    settings = settings_from(config)
    try:
        answered = erase_person(
            settings, read_email(email), dry_run=dry_run, actor=actor_name(actor, settings),
            wait_seconds=lock_seconds(wait, lock_wait), delete_user=delete_user,
            reason=reason.value, received=received, cases=case, tickets=ticket,
            request=request, out=out, on_erased=_print_erased,
        )  # fmt: skip
    except SubjectCollision as exc:
        refuse_shared(exc)
    except errors.LockHeld:
        # Not the usual "exit 0, nothing to do": the erasure request is still outstanding.
        not_done("erasure")
    _print_response(answered)
    if answered.exit_partial:
        raise typer.Exit(errors.EXIT_PARTIAL)


def _print_erased(erased: Erased) -> None:
    """What the erasure did (or, dry, would do): the plan, the deletions, the profiles."""
    result, plan, dry_run = erased.result, erased.result.plan, erased.result.dry_run
    typer.echo(f"subject_ref: {erased.ref}")
    typer.echo(
        f"transfers: {plan.transfers}; tickets to delete: {len(plan.to_delete)}; "
        f"already erased/expired: {len(plan.already_erased)}; "
        f"transfers without a ticket: {len(plan.without_ticket)}; "
        f"unsent chats {'to withhold' if dry_run else 'withheld'}: {len(plan.unsent)}"
    )
    if plan.held:
        typer.echo(
            f"kept under a legal hold: tickets {plan.held}"
            + (" (the person is held: nothing erased)" if plan.subject_held else ""),
            err=True,
        )
    if not dry_run:
        typer.echo(f"request {erased.request.request_id} ({erased.request.kind}) journalled")
    if plan.in_flight:
        typer.echo(
            f"{len(plan.in_flight)} chat(s) of this person are being sent right now: run "
            "`snapzen sync`, then this erase again",
            err=True,
        )
    if dry_run:
        for target in plan.to_delete:
            typer.echo(f"would delete ticket {target.ticket_id} (case {target.case_id})")
        if result.users is not None:
            own = {t.ticket_id for t in plan.to_delete}
            _print_users(result.users, dry_run=True, own=own)
        return
    typer.echo(f"deleted: {len(result.deleted)}; ledger events: {result.event_seqs}")
    if result.failed:
        typer.echo(f"NOT deleted (rerun later): {result.failed}", err=True)
    if erased.delete_user:
        if result.users is None:
            typer.echo("Zendesk user NOT deleted: tickets of this person remain; rerun", err=True)
        else:
            _print_users(result.users, dry_run=False)


def _print_response(answered: Answered) -> None:
    """The response written for the person: what remains where, who was told (Art. 19)."""
    if answered.lookup_failed is not None:
        typer.echo(
            f"could not list Zendesk tickets not created by snapzen ({answered.lookup_failed}); "
            "the response does not list them: rerun this erase to complete it",
            err=True,
        )
    if answered.response is None:
        return
    for item in answered.response.remains:
        ident = f" {item['id']}" if item["id"] is not None else ""
        typer.echo(f"remains: {item['where']}: {item['what']}{ident} until {item['until']}")
    for notice in answered.response.recipients:
        typer.echo(
            f"art19: {notice.recipient} {notice.status} {notice.on} "
            f"(ledger {notice.seq}, notice {notice.notice_id})"
        )
    if any(n.status != "notified" for n in answered.response.recipients):
        typer.echo(
            "Art. 19: tell each recipient `to_notify` above, then record it with "
            "`snapzen ledger notices done NOTICE --when DATE` (open ones: `snapzen ledger notices`)"
        )
    typer.echo(f"erasure response for the person: {answered.path} (and .json)")


def _print_users(users: UserErasure, *, dry_run: bool, own: Collection[int] = ()) -> None:
    """User ids only: the email and name are never printed. ``own``: the tickets this
    erasure would delete (in a dry run they still name the user, but will not then)."""
    blocked = {u: [t for t in ts if t not in own] for u, ts in users.blocked.items()}
    if dry_run:
        ready = [u for u, ts in blocked.items() if not ts]
        for user_id in [*users.to_delete, *ready]:
            typer.echo(f"would delete Zendesk user {user_id}")
    else:
        typer.echo(f"Zendesk users deleted: {users.deleted}")
    if not users.to_delete and not users.refused and not users.blocked:
        typer.echo("no Zendesk end-user profile with this email")
    for user_id in users.refused:
        typer.echo(f"Zendesk user {user_id} is not an end-user: NOT deleted", err=True)
    for user_id, tickets in blocked.items():
        if not tickets:
            continue
        typer.echo(
            f"Zendesk user {user_id} NOT deleted: ticket(s) {tickets} still name them "
            "(requester, CC or submitter); review those tickets first",
            err=True,
        )
    for user_id, reason in users.failed.items():
        typer.echo(f"Zendesk user {user_id} NOT deleted: {reason}; rerun later", err=True)
