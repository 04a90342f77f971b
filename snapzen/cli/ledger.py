"""`snapzen ledger …`: auditor commands over the transfer ledger.

Each command opens the database, calls one library function (snapzen.ledger.audit, verify,
erase, web) and prints. Emails given to `subject`/`erase` are turned into their HMAC
reference at once and never printed, logged or stored.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

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
    settings_from,
)
from snapzen.ledger import audit  # stdlib only; its constants are option defaults
from snapzen.ledger.chain import subject_ref
from snapzen.support import errors
from snapzen.support.atomic import atomic_text

# rich, sqlite_utils, the settings and the ledger's erase/verify/web/db modules (erase pulls
# in the pydantic models) are imported inside the functions that use them: every `snapzen`
# invocation, cron runs included, imports this module just to register its commands, and
# those imports would add ~0.1 s to its start-up.
if TYPE_CHECKING:
    import sqlite_utils

    from snapzen.clients.user_erasure import UserErasure
    from snapzen.clients.zendesk import ZendeskClient
    from snapzen.commands import erase
    from snapzen.ledger import collisions
    from snapzen.support.settings import Settings

app = typer.Typer(
    help="Audit the GDPR transfer ledger: list, export, report, subject access, erasure, "
    "checkpoints, verification and a read-only web UI.",
    no_args_is_help=True,
)

TABLE_LIMIT = 1000  # a terminal table of a million rows helps nobody; csv/json stream all
# What `ledger list` shows by default: fits 80 columns with the legal basis spelled out.
LIST_COLUMNS = (
    "seq", "transferred_at", "event", "origin_country", "destination_country", "legal_basis",
    "ticket_id",
)  # fmt: skip
# --wide: the longer set (wider than 80 columns; piped, it is still one line per row).
TABLE_COLUMNS = (
    "seq", "event", "transferred_at", "widget_id", "origin_country", "recipient",
    "destination_country", "legal_basis", "ticket_id", "retention_until", "subject_ref",
)  # fmt: skip
# Art. 15(1)(c),(d),(2) at a glance: when, to whom, where, on what basis, kept how long.
SUBJECT_TABLE = (
    "transferred_at", "event", "recipient", "destination_country", "legal_basis",
    "retention_until",
)  # fmt: skip


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


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


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


Since = Annotated[
    str | None, typer.Option(help="From this UTC date (YYYY-MM-DD) or ISO time, inclusive.")
]
Until = Annotated[
    str | None, typer.Option(help="Up to this UTC date (whole day) or ISO time, inclusive.")
]
Widget = Annotated[str | None, typer.Option(help="Only this SnapEngage widget id.")]
Country = Annotated[str | None, typer.Option(help="Only this visitor origin country (ISO).")]
Basis = Annotated[
    str | None, typer.Option(help="Only this legal basis: art45, art46, art49_1a, art49_1b.")
]
Ticket = Annotated[int | None, typer.Option(help="Only this Zendesk ticket id.")]
Event = Annotated[str | None, typer.Option(help="Only this event: transfer, erased, expired.")]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        metavar="NAME,NAME",
        help="Table columns, comma-separated, from the stored column names (see --wide).",
    ),
]
Wide = Annotated[bool, typer.Option("--wide", help="Table: more columns (wider than 80).")]
Email = Annotated[
    str,
    typer.Option(
        help="The data subject's email ('-' reads it from stdin, keeping it out of shell "
        "history). Only its HMAC reference is used."
    ),
]


# --- helpers ------------------------------------------------------------------------------


def _settings(config: Path | None) -> Settings:
    return settings_from(config)


def _known_widget(settings: Settings, db: sqlite_utils.Database, widget: str | None) -> None:
    """A ``--widget`` filter names a configured widget or one the ledger holds rows of (an
    audit may ask about a widget since removed); anything else is a typo: exit 2."""
    if widget is None or widget in settings.snapengage.widgets:
        return
    if db.execute("SELECT 1 FROM transfers WHERE widget_id = ? LIMIT 1", (widget,)).fetchone():
        return
    raise errors.ConfigError(
        f"--widget {widget!r} is neither one of snapengage.widgets nor in the ledger"
    )


def _open_read(settings: Settings) -> sqlite_utils.Database:
    from snapzen.ledger.db import open_ledger  # lazy: start-up time (sqlite_utils)

    return open_ledger(settings.ledger, read_only=True)


def _open_write(settings: Settings) -> sqlite_utils.Database:
    from snapzen.ledger.db import open_ledger  # lazy: start-up time (sqlite_utils)

    return open_ledger(settings.ledger)


def _read_email(email: str) -> str:
    """The --email value, read from stdin for '-' (read once: stdin cannot be re-read)."""
    return sys.stdin.readline() if email == "-" else email


def _subject(settings: Settings, email: str) -> str:
    from snapzen.support.settings import (
        require_ledger_key,  # lazy: start-up time (pydantic-settings)
    )

    email = _read_email(email)
    ref = subject_ref(require_ledger_key(settings), email)
    if ref is None:
        # No reference is ever made from an invalid address, so nothing is recorded under it.
        raise errors.ConfigError(
            "--email is not a valid email address: no chats are filed under it"
        )
    return ref


CaseIds = Annotated[
    list[str] | None,
    typer.Option("--case", help="Only this chat (case id) of the subject; repeatable."),
]
TicketIds = Annotated[
    list[int] | None,
    typer.Option("--ticket", help="Only this Zendesk ticket of the subject; repeatable."),
]


def _narrow(
    conn: Any, ref: str, case_ids: list[str] | None, ticket_ids: list[int] | None
) -> set[str] | None:
    """The chats a subject request covers; exit 2 listing the candidate chats (ids and
    dates, never names) when the reference belongs to several people."""
    from snapzen.ledger import collisions  # lazy: start-up time

    try:
        return collisions.select_cases(conn, ref, case_ids or (), ticket_ids or ())
    except collisions.SubjectCollision as exc:
        refuse_shared(exc)
        raise  # unreachable: refuse_shared exits


def refuse_shared(exc: collisions.SubjectCollision) -> NoReturn:
    """Exit 2 with the candidate chats of a shared reference: ids and dates, never names."""
    typer.echo(f"snapzen: {exc}; candidate chats:", err=True)
    for item in exc.candidates:
        typer.echo(
            f"  --case {item.case_id}  ticket {_cell(item.ticket_id) or '-'}  "
            f"started {_cell(item.started_at) or '-'}  widget {_cell(item.widget_id)}",
            err=True,
        )
    raise typer.Exit(errors.EXIT_USAGE)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _emit(
    rows: Iterator[dict[str, Any]],
    fmt: ListFormat,
    *,
    columns: Iterable[str],
    table_columns: Iterable[str],
    title: str,
) -> int:
    if fmt is ListFormat.table:
        from snapzen.cli.tables import print_rows

        return print_rows(rows, list(table_columns), title)
    names = list(columns)
    picked = ({name: row.get(name) for name in names} for row in rows)  # --columns: only those
    return audit.write_rows(picked, sys.stdout, fmt.value, names)  # type: ignore[arg-type]


EXPORT_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def export_format(path: str, given: str | None) -> audit.Format:
    """The format, checked against FILE's extension: `export t.xlsx` must not write CSV
    into a file a spreadsheet will then refuse (or worse, misread)."""
    if given is not None and given not in ("csv", "json", "jsonl"):
        raise errors.ConfigError("--format must be csv, json or jsonl for an export")
    if path == "-":
        return given or "csv"  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    by_name = EXPORT_SUFFIXES.get(suffix)
    if by_name is None and not (given and not suffix):
        raise errors.ConfigError(
            f"{path}: cannot export to a {suffix or 'extension-less'} file; name it .csv, "
            ".json or .jsonl (or give --format with a name without extension)"
        )
    if given and by_name and given != by_name:
        raise errors.ConfigError(f"{path} is named {suffix} but --format is {given}: give one")
    return by_name or given  # type: ignore[return-value]


def _list_format(fmt: ListFormat | None, json_flag: bool) -> ListFormat:
    return pick_format(fmt, json_flag, ListFormat.table, ListFormat.json)


FormatOption = Annotated[
    ListFormat | None,
    typer.Option("--format", help="table (default; plain text when piped), csv, json, jsonl."),
]


# --- commands -----------------------------------------------------------------------------


@app.command("list")
@handle_errors
def list_(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    country: Country = None,
    basis: Basis = None,
    ticket: Ticket = None,
    event: Event = None,
    fmt: FormatOption = None,
    json_flag: JsonFlag = False,
    columns: Columns = None,
    wide: Wide = False,
    limit: Annotated[
        int | None,
        typer.Option(help=f"At most this many rows (table format defaults to {TABLE_LIMIT})."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """List ledger rows in chain order, filtered; csv/json/jsonl stream every match."""
    from snapzen.cli.tables import choose_columns

    fmt = _list_format(fmt, json_flag)
    shown = choose_columns(
        columns, wide, default=LIST_COLUMNS, wide_set=TABLE_COLUMNS, known=audit.COLUMNS
    )
    filters = audit.Filters.from_cli(
        since=since, until=until, widget=widget, country=country, basis=basis, ticket=ticket,
        event=event,
    )  # fmt: skip
    if fmt is ListFormat.table and limit is None:
        limit = TABLE_LIMIT
    settings = _settings(config)
    db = _open_read(settings)
    _known_widget(settings, db, widget)
    rows = audit.iter_transfers(db.conn, filters, limit=limit)
    count = _emit(
        rows,
        fmt,
        columns=shown if columns or wide else audit.COLUMNS,
        table_columns=shown,
        title="Ledger rows",
    )
    if fmt is ListFormat.table and count == limit:
        typer.echo(f"(first {limit} rows; use --limit or --format csv for more)", err=True)


@app.command()
@handle_errors
def export(
    file: Annotated[Path, typer.Argument(help="Output file ('-' for stdout).")],
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    country: Country = None,
    basis: Basis = None,
    ticket: Ticket = None,
    event: Event = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="csv|json|jsonl",
            help="Default: from FILE's extension (.csv, .json, .jsonl); needed for '-'.",
        ),
    ] = None,
    json_flag: JsonFlag = False,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:
    """Stream every (matching) ledger row to FILE in constant memory."""
    filters = audit.Filters.from_cli(
        since=since, until=until, widget=widget, country=country, basis=basis, ticket=ticket,
        event=event,
    )  # fmt: skip
    if json_flag:
        if fmt not in (None, "json"):
            raise errors.ConfigError(f"--json and --format {fmt} disagree: give one")
        fmt = "json"
    kind = export_format(str(file), fmt)
    new_file(file, overwrite)
    settings = _settings(config)
    db = _open_read(settings)
    _known_widget(settings, db, widget)
    rows = audit.iter_transfers(db.conn, filters)
    if str(file) == "-":
        audit.write_rows(rows, sys.stdout, kind, audit.COLUMNS)
        return
    with atomic_text(file) as handle:
        count = audit.write_rows(rows, handle, kind, audit.COLUMNS)
    typer.echo(f"exported {count} rows to {file} ({kind})", err=True)


@app.command()
@handle_errors
def report(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    fmt: Annotated[
        ReportFormat | None, typer.Option("--format", help="table (sentences; default) or json.")
    ] = None,
    json_flag: JsonFlag = False,
    horizon_days: Annotated[
        int, typer.Option(help="Show retention ending within this many days.", min=1)
    ] = audit.EXPIRY_HORIZON_DAYS,
    art49_max_months: Annotated[
        int, typer.Option(help="Warn when an Art. 49 basis is used in more distinct months.")
    ] = audit.ART49_MAX_MONTHS,
    art49_max_per_month: Annotated[
        int, typer.Option(help="Warn when an Art. 49 basis exceeds this many in one month.")
    ] = audit.ART49_MAX_PER_MONTH,
    config: ConfigOption = None,
) -> None:
    """The Art. 30(1) record of this processing (from the [record] settings and what the
    ledger shows was sent), then transfers by month, destination, basis and origin; withheld
    chats; retention ending soon; a warning when Art. 49 carries regular transfers."""
    from snapzen.ledger.record import art30_record  # lazy: start-up time

    filters = audit.Filters.from_cli(since=since, until=until, widget=widget)
    settings = _settings(config)
    db = _open_read(settings)
    _known_widget(settings, db, widget)
    result = audit.build_report(
        db.conn,
        filters,
        horizon_days=horizon_days,
        art49_max_months=art49_max_months,
        art49_max_per_month=art49_max_per_month,
    )
    where, params = filters.where()
    record = art30_record(db.conn, settings.record, settings.consent, where, params)
    if pick_format(fmt, json_flag, ReportFormat.table, ReportFormat.json) is ReportFormat.json:
        echo_json({"art30_record": record, **result.to_dict()})
    else:
        from snapzen.cli.report_text import report_lines, wrapped

        _print_record(record)
        for line in wrapped(report_lines(result)):
            typer.echo(line)


def _print_record(record: dict[str, Any]) -> None:
    """The Art. 30(1) record, fields in the article's order; plain sentences (no markup)."""
    from snapzen.cli.report_text import wrapped
    from snapzen.ledger.record import LABELS  # lazy: start-up time

    lines = ["Record of processing activities, Art. 30(1): chat transcripts to Zendesk."]
    for key, label in LABELS.items():
        value = record[key]
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"  {label}: {text or '(none)'}.")
    lines.append("  (e) Transfers to third countries, with their safeguards:")
    for row in record["e_transfers"]:
        ref = f" ({row['mechanism_ref']})" if row["mechanism_ref"] else ""
        lines.append(
            f"    {row['recipient']} in {row['destination_country']}: {row['transfers']} "
            f"transfers under {row['legal_basis']}{ref}."
        )
    if not record["e_transfers"]:
        lines.append("    none in this window.")
    for line in wrapped(lines):
        typer.echo(line)


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
    settings = _settings(config)
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


def _zendesk_client(settings: Settings) -> ZendeskClient:
    from snapzen.clients.http import HttpClient  # lazy: start-up time (requests, tenacity)
    from snapzen.clients.zendesk import ZendeskClient

    return ZendeskClient(settings.zendesk, HttpClient(settings.http, service="zendesk"))


def _make_deleter(settings: Settings) -> erase.TicketDeleter:
    """The real Zendesk adapter, built only when erasing for real."""
    from snapzen.commands import erase  # lazy: start-up time (see erase_)

    client = _zendesk_client(settings)
    return erase.ZendeskTicketDeleter(client, timeout=settings.zendesk.job_timeout_seconds)


def _make_user_eraser(settings: Settings, email: str) -> erase.UserEraser:
    """The real Zendesk user eraser, bound to the email (which goes no further than it)."""
    from snapzen.clients.user_erasure import ZendeskUserEraser  # lazy: start-up time

    return ZendeskUserEraser(_zendesk_client(settings), email.strip())


def _writer_lock(settings: Settings, wait_seconds: float) -> Any:
    from snapzen.support.lock import writer_lock

    return writer_lock(settings.ledger.path, wait=True, timeout=wait_seconds)


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
    config: ConfigOption = None,
) -> None:
    """Art. 17: delete the person's Zendesk tickets and append `erased` events (chain stays
    valid; no email stored); journal the request (even when nothing is found) and the
    erasure (in the erasure journal outside the database, re-applied after a restore).
    Tickets under a legal hold are kept. Safe to rerun: erased tickets are skipped."""
    from snapzen.cli.ledger_rights import received_day
    from snapzen.commands import erase  # lazy: start-up time (imports the pydantic models)
    from snapzen.commands.erase_request import RequestInfo
    from snapzen.ledger import requests

    settings = _settings(config)
    email = _read_email(email)
    ref = _subject(settings, email)
    db = _open_write(settings)
    selected = _narrow(db.conn, ref, case, ticket)  # exit 2 before any deletion
    if selected is not None and delete_user:
        raise errors.ConfigError(
            "--delete-user with --case/--ticket: the Zendesk profile of this email may be "
            "another person's too; delete it by hand once you know whose it is"
        )
    deleter = None if dry_run else _make_deleter(settings)
    users = _make_user_eraser(settings, email) if delete_user else None
    # A dry run only reads; a real erasure appends to the chain, so it queues behind a sync.
    seconds = lock_wait if lock_wait is not None else (-1 if wait else 0)
    lock = None if dry_run else _writer_lock(settings, seconds)
    request = RequestInfo(
        request_id=requests.new_request_id(),
        kind=requests.REASON_KINDS[reason.value],
        received_on=received_day(received),
        journal=settings.ledger.erasure_journal_path,
    )
    try:
        result = erase.erase_subject(
            db, ref, deleter, dry_run=dry_run, lock=lock, actor=actor_name(actor, settings),
            users=users, reason=ERASE_REASONS[reason.value],
            request=None if dry_run else request,
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
        typer.echo(f"request {request.request_id} ({request.kind}) journalled")
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
            _print_users(result.users, dry_run=True)
        return
    typer.echo(f"deleted: {len(result.deleted)}; ledger events: {result.event_seqs}")
    if result.failed:
        typer.echo(f"NOT deleted (rerun later): {result.failed}", err=True)
    if delete_user:
        if result.users is None:
            typer.echo("Zendesk user NOT deleted: tickets of this person remain; rerun", err=True)
        else:
            _print_users(result.users, dry_run=False)
    if not result.complete or plan.in_flight:
        raise typer.Exit(errors.EXIT_PARTIAL)


def _print_users(users: UserErasure, *, dry_run: bool) -> None:
    """User ids only: the email and name are never printed."""
    if dry_run:
        for user_id in users.to_delete:
            typer.echo(f"would delete Zendesk user {user_id}")
    else:
        typer.echo(f"Zendesk users deleted: {users.deleted}")
    if not users.to_delete and not users.refused:
        typer.echo("no Zendesk end-user profile with this email")
    for user_id in users.refused:
        typer.echo(f"Zendesk user {user_id} is not an end-user: NOT deleted", err=True)
    for user_id, reason in users.failed.items():
        typer.echo(f"Zendesk user {user_id} NOT deleted: {reason}; rerun later", err=True)


# `checkpoint`, `cosign`, `keygen` and `verify`: snapzen.cli.ledger_evidence (registered at the
# end of this module).


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep the sanitized snapshot and metadata here (default: a temp dir)."),
    ] = None,
    sql_time_limit_ms: Annotated[int, typer.Option(help="Datasette SQL time limit.")] = 5000,
    prepare_only: Annotated[
        bool,
        typer.Option("--prepare-only", help="Write snapshot + metadata, print the command, exit."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Open a read-only (immutable) Datasette on a snapshot without raw payloads, with
    column descriptions and canned queries."""
    from snapzen.ledger import web  # lazy: start-up time

    settings = _settings(config)
    _open_read(settings).conn.close()  # same existence check and message as other commands
    if importlib.util.find_spec("datasette") is None:
        raise errors.ConfigError(
            "datasette is not installed: pip install 'snapzen[audit]'; the container image "
            "leaves it out: build the auditors' image of docs/cli.md (`ledger serve`)"
        )
    from snapzen.cli.serve import run_until_signalled, write_plugin

    with tempfile.TemporaryDirectory(prefix="snapzen-serve-") as tmp:
        target = workdir or Path(tmp)
        snapshot, metadata, sha = web.prepare(Path(settings.ledger.path), target)
        command = web.serve_command(
            snapshot,
            metadata,
            host=host,
            port=port,
            sql_time_limit_ms=sql_time_limit_ms,
            extra=["--plugins-dir", str(write_plugin(target))],
        )
        typer.echo(f"snapshot {snapshot} sha256 {sha}", err=True)
        if prepare_only:
            typer.echo(" ".join(command))
            if workdir is None:
                typer.echo("(temp dir removed; pass --workdir to keep the files)", err=True)
            return
        typer.echo(f"serving read-only at http://{host}:{port}/{web.DB_NAME}", err=True)
        code = run_until_signalled(command)  # SIGTERM/Ctrl-C: Datasette stopped, tmp removed
    raise typer.Exit(code)


from snapzen.cli import ledger_evidence  # noqa: E402,F401  (registers its commands on `app`)
