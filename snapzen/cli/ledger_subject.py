"""`snapzen ledger subject | erase`: one person's transfers (Art. 15) and their erasure
(Art. 17, withdrawal, objection). Emails become their HMAC reference at once; a reference
several people used is refused until narrowed (snapzen.ledger.collisions)."""

from __future__ import annotations

import sys
from collections.abc import Collection
from datetime import date
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
    fail,
    handle_errors,
)
from snapzen.cli.ledger import (
    CaseIds,
    Email,
    TicketIds,
    _evidence_settings,
    _locked,
    _narrow,
    _open_read,
    _read_email,
    _settings,
    _subject,
    _zendesk_client,
    app,
)
from snapzen.cli.ledger_queries import (
    Columns,
    FormatOption,
    ListFormat,
    Wide,
    _emit,
    _list_format,
)
from snapzen.ledger import audit
from snapzen.support import errors

# The erase command and the Zendesk user eraser pull in the pydantic models: imported when
# erasing, not when `snapzen` starts.
if TYPE_CHECKING:
    from snapzen.clients.ticket_deletion import TicketDeleter
    from snapzen.clients.user_erasure import UserErasure
    from snapzen.commands import erase
    from snapzen.ledger.requests import Request
    from snapzen.support.settings import Settings

# Art. 15(1)(c),(d),(2) at a glance: when, to whom, where, on what basis, kept how long.
SUBJECT_TABLE = (
    "recorded_at", "event", "recipient", "destination_country", "legal_basis",
    "retention_until",
)  # fmt: skip


class EraseReason(StrEnum):
    art17 = "art17"
    consent_withdrawn = "consent_withdrawn"
    objection = "objection"


# --reason → the `reason` in each `erased` event (art17 keeps the name earlier rows carry).
ERASE_REASONS = {
    "art17": "art17_request",
    "consent_withdrawn": "consent_withdrawn",
    "objection": "objection",
}


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
    reference several people used is refused (exit 2) until narrowed by --case/--ticket."""
    from snapzen.cli.tables import choose_columns

    fmt = _list_format(fmt, json_flag)
    shown = choose_columns(
        columns,
        wide,
        default=SUBJECT_TABLE,
        wide_set=audit.SUBJECT_COLUMNS[:11],
        known=audit.SUBJECT_COLUMNS,
    )
    settings = _evidence_settings(config)
    ref = _subject(settings, email)
    db = _open_read(settings)
    selected = _narrow(db.conn, ref, case, ticket)
    rows = audit.subject_transfers(db.conn, ref)
    if selected is not None:
        rows = (row for row in rows if row["case_id"] in selected)
    if fmt is ListFormat.table:
        typer.echo(f"subject reference: {ref}", err=not sys.stdout.isatty())
    count = _emit(
        rows,
        fmt,
        columns=shown if columns or wide else audit.SUBJECT_COLUMNS,
        table_columns=shown,
        title="Transfers of this data subject",
    )
    if count == 0:
        typer.echo(
            "no ledger rows for this subject (chats outside the restricted region are not "
            "recorded as transfers)",
            err=True,
        )
        from snapzen.ledger.forget import note  # lazy: start-up time

        if (why := note(db.conn)) is not None:
            typer.echo(why, err=True)


def _make_deleter(settings: Settings) -> TicketDeleter:
    """The Zendesk ticket deleter the retention sweep uses too, built only when erasing."""
    from snapzen.clients.ticket_deletion import BulkTicketDeleter  # lazy: start-up time

    client = _zendesk_client(settings)
    return BulkTicketDeleter(client, timeout=settings.zendesk.job_timeout_seconds)


def _make_user_eraser(settings: Settings, email: str) -> erase.UserEraser:
    """The real Zendesk user eraser, bound to the email (which goes no further than it)."""
    from snapzen.clients.user_erasure import ZendeskUserEraser  # lazy: start-up time

    return ZendeskUserEraser(_zendesk_client(settings), email.strip())


@app.command("erase")
@handle_errors
def erase_(
    email: Email,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the tickets that would be deleted.")
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    lock_wait: Annotated[
        float | None,
        typer.Option(
            "--lock-wait",
            hidden=True,  # before --wait; kept so scripts keep working
            help="Seconds to wait for a running sync to release the writer lock.",
        ),
    ] = None,
    delete_user: Annotated[
        bool,
        typer.Option(
            "--delete-user",
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
            "--received", help="Day the request was received (YYYY-MM-DD; default today, UTC)."
        ),
    ] = None,
    case: CaseIds = None,
    ticket: TicketIds = None,
    request: Annotated[
        str | None,
        typer.Option(
            "--request",
            help="Answer this open erasure or objection request (`ledger requests "
            "open`) instead of recording a new one; its received date and clock apply.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for the erasure response to the person (erasure-response-ID.txt "
            "and .json, 0600). Default: responses/ beside the ledger database.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Art. 17: delete the person's Zendesk tickets and append `erased` events (chain stays
    valid; no email stored); journal the request (even when nothing is found) and the
    erasure (in the erasure journal outside the database, re-applied after a restore).
    Tickets under a legal hold are kept. Safe to rerun: erased tickets are skipped."""
    from snapzen.cli.ledger_rights import attached, received_day
    from snapzen.commands import erase  # lazy: start-up time (imports the pydantic models)
    from snapzen.commands.erase_request import RequestInfo
    from snapzen.commands.erasure_notices import other_recipients
    from snapzen.ledger import requests
    from snapzen.support.settings import require_ledger_key

    settings = _settings(config)
    email = _read_email(email)
    ref = _subject(settings, email)
    # Refuse a shared reference (exit 2) before queueing for the lock; decided again on the
    # ledger opened under the lock, which is the one erased.
    if request is not None and received is not None:
        raise errors.ConfigError("--received with --request: the request has its own date")
    reader = _open_read(settings)
    try:
        selected = _narrow(reader.conn, ref, case, ticket)
        answered: Request | None = None
        if request is not None:  # exit 2 when unknown, closed or not an erasure-kind request
            answered = attached(reader, request, requests.ERASURE_KINDS)
    finally:
        reader.conn.close()
    if selected is not None and delete_user:
        raise errors.ConfigError(
            "--delete-user with --case/--ticket: the Zendesk profile of this email may be "
            "another person's too; delete it by hand once you know whose it is"
        )
    deleter = None if dry_run else _make_deleter(settings)
    users = _make_user_eraser(settings, email) if delete_user else None
    # A dry run only reads; a real erasure appends to the chain, so it queues behind a sync.
    seconds = lock_wait if lock_wait is not None else (-1 if wait else 0)
    request_info = RequestInfo(
        request_id=answered.request_id if answered else requests.new_request_id(),
        kind=answered.kind if answered else requests.REASON_KINDS[reason.value],
        received_on=(
            date.fromisoformat(answered.received_on) if answered else received_day(received)
        ),
        journal=settings.ledger.erasure_journal_path,
        journal_key=require_ledger_key(settings),
        snapengage_days=settings.snapengage.retention_days,
        others=other_recipients(settings),
    )
    try:
        with _open_read(settings) if dry_run else _locked(settings, seconds) as db:
            if not dry_run:
                selected = _narrow(db.conn, ref, case, ticket)
                if answered is not None:  # still open, now that the lock is held
                    attached(db, answered.request_id, requests.ERASURE_KINDS)
            result = erase.erase_subject(
                db, ref, deleter, dry_run=dry_run, actor=actor_name(actor, settings),
                users=users, reason=ERASE_REASONS[reason.value],
                request=None if dry_run else request_info,
                only_cases=selected,
            )  # fmt: skip
    except errors.LockHeld:
        # Not the usual "exit 0, nothing to do": the erasure request is still outstanding.
        fail(
            "erasure NOT done: another snapzen run holds the writer lock; rerun with --wait "
            "to queue behind it",
            errors.EXIT_ABORTED,
        )
        raise  # unreachable: fail() exits
    plan = result.plan
    typer.echo(f"subject_ref: {ref}")
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
        typer.echo(f"request {request_info.request_id} ({request_info.kind}) journalled")
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
    if delete_user:
        if result.users is None:
            typer.echo("Zendesk user NOT deleted: tickets of this person remain; rerun", err=True)
        else:
            _print_users(result.users, dry_run=False)
    from snapzen.cli import erase_response

    lookup = None
    if selected is None and result.users is None:
        lookup = erase_response.lookup_profile(lambda: _make_user_eraser(settings, email))
    erase_response.write_response(
        settings, result, request_id=request_info.request_id, out=out,
        lookup=lookup, ledger=_open_read(settings),  # only read: the erasure chained it all
    )  # fmt: skip
    if not result.complete or plan.in_flight:
        raise typer.Exit(errors.EXIT_PARTIAL)


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
