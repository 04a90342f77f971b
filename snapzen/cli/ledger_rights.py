"""`snapzen ledger access | requests | hold | reapply-erasures`: data-subject rights.

Thin over snapzen.commands.access, snapzen.ledger.requests, holds and erasure_journal. Emails
are turned into their HMAC reference at once and never printed, logged or stored; only
``access`` hands the email to Zendesk search (to find tickets snapzen does not know).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.access_output import IncludeTickets
from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    OverwriteOption,
    WaitOption,
    actor_name,
    echo_json,
    fail,
    handle_errors,
    new_file,
    pick_format,
)
from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.ledger.requests import Request

Received = Annotated[
    str | None,
    typer.Option(
        "--received",
        help="Day the request was received (YYYY-MM-DD; default today, UTC): the Art. 12(3) "
        "deadline is one month later.",
    ),
]
CaseOpt = Annotated[str | None, typer.Option("--case", help="A SnapEngage case id.")]
TicketOpt = Annotated[int | None, typer.Option("--ticket", help="A Zendesk ticket id.")]
EmailOpt = Annotated[
    str | None,
    typer.Option("--email", help="The person's email ('-' reads it from stdin); only its HMAC "
                 "reference is kept."),
]  # fmt: skip
AccessCases = Annotated[
    list[str] | None,
    typer.Option("--case", help="A SnapEngage case id; with --email, only this chat of "
                 "theirs (repeatable)."),
]  # fmt: skip
AccessTickets = Annotated[
    list[int] | None,
    typer.Option("--ticket", help="A Zendesk ticket id; with --email, only this ticket of "
                 "theirs (repeatable)."),
]  # fmt: skip
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the chain).")]
RequestOpt = Annotated[
    str | None,
    typer.Option("--request", help="Answer this open request (`ledger requests open`) instead "
                 "of recording a new one; its received date and clock apply."),
]  # fmt: skip
LockWait = Annotated[
    float | None,
    typer.Option(
        "--lock-wait",
        hidden=True,  # before --wait; kept so scripts keep working
        help="Seconds to wait for a running sync to release the writer lock.",
    ),
]


class ListFormat(StrEnum):
    table = "table"
    json = "json"


FormatOpt = Annotated[ListFormat | None, typer.Option("--format", help="table (default) or json.")]


def _json(fmt: ListFormat | None, json_flag: bool) -> bool:
    return pick_format(fmt, json_flag, ListFormat.table, ListFormat.json) is ListFormat.json


def lock_seconds(wait: bool, lock_wait: float | None) -> float:
    """--wait: as long as it takes; without it, at once (the --lock-wait seconds if given)."""
    return lock_wait if lock_wait is not None else (-1 if wait else 0)


def not_done(what: str) -> None:
    """A request is still outstanding when the lock is held: exit 1, not "nothing to do"."""
    fail(
        f"{what} NOT done: another snapzen run holds the writer lock; rerun with --wait to "
        "queue behind it",
        errors.EXIT_ABORTED,
    )


def received_day(text: str | None) -> date:
    """--received as a date (default today, UTC); a day in the future is refused (exit 2)."""
    from snapzen.support import clock

    today = clock.utcnow().date()
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise errors.ConfigError(f"--received {text!r} is not a date (YYYY-MM-DD)") from None
    if day > today:
        raise errors.ConfigError(f"--received {day} is in the future (today is {today})")
    return day


def attached(db: Any, request_id: str, kinds: tuple[str, ...]) -> Request:
    """The open request ``--request`` names (exit 2 when closed, unknown or of another
    kind)."""
    from snapzen.commands.request_clock import open_one
    from snapzen.support import clock

    return open_one(db, request_id, clock.utcnow(), kinds)


def _access_target(cases: list[str], tickets: list[int], email: str | None) -> None:
    """One case or one ticket; or an email, narrowed by any --case/--ticket of that person
    (needed when several people used it)."""
    if email is None and len(cases) + len(tickets) != 1:
        raise errors.ConfigError("give --email, or exactly one --case or --ticket")


def _one_target(case: str | None, ticket: int | None, email: str | None) -> None:
    if sum(v is not None for v in (case, ticket, email)) != 1:
        raise errors.ConfigError("give exactly one of --case, --ticket or --email")


def register(app: typer.Typer) -> None:
    """Add the commands to the `ledger` group."""
    from snapzen.cli import ledger as base

    @app.command()
    @handle_errors
    def access(
        out: Annotated[Path, typer.Option("--out", help="Directory for the pack's two files.")],
        case: AccessCases = None,
        ticket: AccessTickets = None,
        email: EmailOpt = None,
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
        --include-ticket."""
        from snapzen.cli.access_output import report_extras, snapengage_reader
        from snapzen.commands.access import write_pack
        from snapzen.commands.access_checks import require_complete
        from snapzen.ledger import collisions

        cases, tickets = case or [], ticket or []
        _access_target(cases, tickets, email)
        for name in ("subject.json", "subject.html"):  # evidence: never replaced silently
            new_file(out / name, overwrite)
        settings = base._settings(config)
        require_complete(settings)  # exit 2 before anything is read, written or recorded
        raw_email = base._read_email(email) if email is not None else None
        ref = base._subject(settings, raw_email) if raw_email is not None else None
        day = received_day(received)
        if request is not None and received is not None:
            raise errors.ConfigError("--received with --request: the request has its own date")
        try:
            with base._locked(settings, lock_seconds(wait, lock_wait)) as db:
                if request is not None:
                    day = date.fromisoformat(attached(db, request, ("access",)).received_on)
                result = write_pack(
                    db, settings, base._zendesk_client(settings), out, subject_ref=ref,
                    case_ids=cases, ticket_ids=tickets, email=raw_email, received_on=day,
                    actor=actor_name(actor, settings),
                    chats_reader=snapengage_reader(settings), include_tickets=include_ticket or [],
                    request_id=request,
                )  # fmt: skip
        except errors.LockHeld:
            not_done("access pack")
        except collisions.SubjectCollision as exc:  # nothing written or recorded
            base.refuse_shared(exc)
        typer.echo(
            f"access pack {result.request_id}: {result.tickets} ticket(s), "
            f"{len(result.case_ids)} chat(s); {result.json_path} sha256 {result.sha256_json}; "
            f"{result.html_path} sha256 {result.sha256_html}"
        )
        if not result.found:
            typer.echo("nothing found for this person (recorded as such)", err=True)
        if result.forgotten:
            typer.echo(result.forgotten, err=True)
        report_extras(result)
        if result.unreadable:
            typer.echo(f"tickets NOT read from Zendesk (rerun): {result.unreadable}", err=True)
        if not result.complete:
            raise typer.Exit(errors.EXIT_PARTIAL)

    from snapzen.cli import ledger_requests

    ledger_requests.register(app)  # `ledger requests` and its clock
    from snapzen.cli import ledger_notices

    ledger_notices.register(app)  # `ledger notices`: Art. 19 notices still owed

    hold_app = typer.Typer(help="Legal holds: keep tickets out of the sweep and erasure.")
    app.add_typer(hold_app, name="hold")

    def _hold_change(
        add: bool, case: str | None, ticket: int | None, email: str | None, reason: str,
        actor: str | None, wait: bool, config: Path | None,
    ) -> None:  # fmt: skip
        from snapzen.ledger import holds
        from snapzen.ledger.db import transaction

        _one_target(case, ticket, email)
        settings = base._settings(config)
        ref = base._subject(settings, email) if email is not None else None
        target = holds.target_for(case_id=case, ticket_id=ticket, subject=ref)
        change = holds.add if add else holds.remove
        try:
            with base._locked(settings, lock_seconds(wait, None)) as db, transaction(db) as conn:
                row = change(
                    conn, target, reason, actor=actor_name(actor, settings), now=datetime.now(UTC)
                )
        except errors.LockHeld:
            not_done("hold change")
        shown = f"subject:{ref}" if ref else target
        if row is None:
            typer.echo(f"{shown}: {'already held' if add else 'no active hold'}; nothing recorded")
            return
        typer.echo(f"{shown}: hold {'added' if add else 'removed'} (ledger seq {row['seq']})")

    @hold_app.command("add")
    @handle_errors
    def hold_add(
        reason: Reason, case: CaseOpt = None, ticket: TicketOpt = None, email: EmailOpt = None,
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Place a legal hold (Art. 17(3)(e)) on a case, a ticket or all of a person's."""
        _hold_change(True, case, ticket, email, reason, actor, wait, config)

    @hold_app.command("remove")
    @handle_errors
    def hold_remove(
        reason: Reason, case: CaseOpt = None, ticket: TicketOpt = None, email: EmailOpt = None,
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Lift a hold; the next sweep deletes what is due."""
        _hold_change(False, case, ticket, email, reason, actor, wait, config)

    @hold_app.command("list")
    @handle_errors
    def hold_list(
        fmt: FormatOpt = None,
        json_output: JsonFlag = False,
        config: ConfigOption = None,
    ) -> None:
        """Active holds, oldest first."""
        from snapzen.ledger import holds

        as_json = _json(fmt, json_output)  # a usage error before the ledger is opened
        active = holds.active(base._open_read(base._settings(config)).conn)
        if as_json:
            echo_json([h.as_dict() for h in active.holds])
            return
        for h in active.holds:
            typer.echo(f"{h.target}  since {h.since}  reason: {h.reason}")
        if not active.holds:
            typer.echo("no active holds")

    @app.command("reapply-erasures")
    @handle_errors
    def reapply_erasures(
        journal: Annotated[
            Path | None,
            typer.Option(help="Erasure journal (default: ledger.erasure_journal)."),
        ] = None,
        wait: WaitOption = False,
        lock_wait: LockWait = None,
        config: ConfigOption = None,
    ) -> None:
        """After restoring a backup by hand: re-apply every erasure and request in the journal
        (withhold the erased people's chats, record their deleted tickets, re-append request
        events) before the next sync. An edited journal is refused (exit 2, naming the line)."""
        from snapzen.ledger import erasure_journal, erasure_reapply
        from snapzen.support.settings import require_ledger_key

        settings = base._settings(config)
        key = require_ledger_key(settings)
        path = journal or settings.ledger.erasure_journal_path
        try:
            with base._locked(settings, lock_seconds(wait, lock_wait)) as db:
                # An edited journal: JournalDamaged (exit 2, the line named), nothing applied.
                known = erasure_journal.ledger_erasures(db.conn)
                if path == settings.ledger.erasure_journal_path:
                    erasure_journal.migrate(path, key, known)  # an old-format journal, once
                contents = erasure_journal.read(path, key, known=known)
                result = erasure_reapply.reapply(db, contents.erasures, requests=contents.requests)
        except errors.LockHeld:
            not_done("re-applying the erasure journal")
        typer.echo(_reapplied(result.as_dict(), path))
        if result.in_flight:
            typer.echo(
                f"{len(result.in_flight)} chat(s) of erased people are being sent: run "
                "`snapzen sync`, then `snapzen ledger erase` for them again",
                err=True,
            )
            raise typer.Exit(errors.EXIT_PARTIAL)


def _reapplied(counts: dict[str, Any], path: Path) -> str:
    return (
        f"erasure journal {path}: {counts['entries']} erasure(s) re-applied; "
        f"{counts['withheld']} chat(s) withheld, {counts['events']} ledger event(s) added, "
        f"{counts['requests']} request event(s) restored"
    )
