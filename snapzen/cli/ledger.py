"""`snapzen ledger …`: audit the GDPR transfer ledger. The group, what an auditor reads here
(list, export, report, serve, subject, reconcile; read-only but for reconcile's record), the
cases flagged for a person (`flags [resolve]`), and
the commands of the modules that hold the rest: the evidence (ledger_evidence), a person's
rights (ledger_rights) and the request clock (ledger_requests).

The rows' output (a table, csv, json, jsonl) is shared by `list` and `subject`; `list`,
`export` and `report` share their filters.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from snapzen import commands  # each module imported when first named (start-up time)
from snapzen.cli import ledger_evidence, ledger_requests, ledger_rights
from snapzen.cli.common import (
    ActorOption,
    CaseIds,
    Email,
    Format,
    FormatOption,
    OverwriteOption,
    SummaryOption,
    TicketIds,
    WaitOption,
    actor_name,
    command,
    echo_json,
    lock_seconds,
    new_file,
    opt,
    read_email,
    say,
    settings_from,
)
from snapzen.cli.render import choose_columns, print_rows
from snapzen.commands import ledger_terms as terms  # light: the options' names and defaults
from snapzen.commands import summaries  # light: the standard library

app = typer.Typer(
    help="Audit the GDPR transfer ledger: list, export, report, subject access, erasure, "
    "checkpoints, verification and a read-only web UI.",
    no_args_is_help=True,
)

# What `ledger list` shows by default: fits 80 columns with the legal basis spelled out.
LIST_COLUMNS = (
    "seq",
    "recorded_at",
    "event",
    "origin_country",
    "destination_country",
    "legal_basis",
    "ticket_id",
)
# --wide: the longer set (wider than 80 columns; piped, it is still one line per row).
TABLE_COLUMNS = (
    "seq",
    "event",
    "recorded_at",
    "widget_id",
    "origin_country",
    "recipient",
    "destination_country",
    "legal_basis",
    "ticket_id",
    "retention_until",
    "subject_ref",
)
# Art. 15(1)(c),(d),(2) at a glance: when, to whom, where, on what basis, kept how long.
SUBJECT_TABLE = (
    "recorded_at",
    "event",
    "recipient",
    "destination_country",
    "legal_basis",
    "retention_until",
)


def on_terminal() -> bool:
    """Whether stdout is a terminal (a person reading), not a pipe or a file."""
    return sys.stdout.isatty()


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


# The filters of `list` and `export` (filter_options); `report` takes the first three.
Since = Annotated[
    str | None, opt("DATE", "From this UTC date (YYYY-MM-DD) or ISO time, inclusive.")
]
Until = Annotated[
    str | None, opt("DATE", "Up to this UTC date (whole day) or ISO time, inclusive.")
]
Widget = Annotated[str | None, opt("ID", "Only this SnapEngage widget id.")]
Country = Annotated[str | None, opt("CC", "Only this visitor origin country (ISO).")]
Basis = Annotated[
    str | None, opt("BASIS", "Only this legal basis: art45, art46, art49_1a, art49_1b.")
]
Ticket = Annotated[int | None, opt("ID", "Only this Zendesk ticket id.")]
EventOption = Annotated[
    terms.Event | None,
    opt(
        "EVENT",
        f"Only rows of this event (snapzen.ledger.evidence.events): "
        f"{', '.join(e.value for e in terms.Event)}.",
        "--event",
    ),
]
Columns = Annotated[
    str | None,
    opt(
        "NAME,NAME",
        "Table columns, comma-separated, from the stored column names (see --wide).",
        "--columns",
    ),
]
Wide = Annotated[bool, opt("", "Table: more columns (wider than 80).", "--wide")]
RowsFormat = Annotated[
    ListFormat | None,
    typer.Option(
        "--format", help="table (default; plain text when piped or redirected), csv, json, jsonl."
    ),
]


def filter_options(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    country: Country = None,
    basis: Basis = None,
    ticket: Ticket = None,
    event: EventOption = None,
) -> dict[str, Any]:
    """The seven filters `list` and `export` take, declared once here (``filtered`` gives
    them to a command): the keyword arguments of snapzen.commands.ledger_queries.filters."""
    return dict(locals(), event=event.value if event else None)


def filtered(command: Callable[..., None]) -> Callable[..., None]:
    """The command takes the options of ``filter_options`` besides its own (after its
    arguments) and is handed their values as ``filters``. Typer reads a command's parameters
    from its signature, which is the command's own with those seven added."""
    shared = list(inspect.signature(filter_options, eval_str=True).parameters.values())
    own = list(inspect.signature(command, eval_str=True).parameters.values())
    required = [p for p in own if p.default is p.empty and p.name != "filters"]
    rest = [p for p in own if p.default is not p.empty]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        command(filters=filter_options(**{p.name: given.pop(p.name) for p in shared}), **given)

    run.__signature__ = inspect.Signature([*required, *shared, *rest])  # type: ignore[attr-defined]
    return run


def emit(
    rows: Iterator[dict[str, Any]],
    fmt: ListFormat,
    *,
    columns: Iterable[str],
    table_columns: Iterable[str],
    title: str,
) -> int:
    """Rows on stdout as a table, or csv/json/jsonl with only ``columns``; the count."""
    if fmt is ListFormat.table:
        return print_rows(rows, list(table_columns), title)
    names = list(columns)
    picked = ({name: row.get(name) for name in names} for row in rows)  # --columns: only those
    return commands.ledger_queries.write_rows(picked, sys.stdout, fmt.value, names)  # type: ignore[arg-type]


@command(app, "list")
@filtered
def list_(
    filters: dict[str, Any],  # the values of filter_options' options (`filtered`)
    fmt: RowsFormat = None,
    columns: Columns = None,
    wide: Wide = False,
    limit: Annotated[
        int | None,
        opt(
            "N",
            f"At most this many rows (a table on a terminal shows {terms.TABLE_LIMIT} unless "
            "given; piped or redirected output has no cap).",
            min=1,
        ),
    ] = None,
) -> None:
    """List ledger rows in chain order, filtered; piped, redirected, csv, json and jsonl output
    give every match.

    Examples:

    ```
    $ snapzen ledger list --since 2026-01-01 --basis art49_1a
    $ snapzen ledger list --wide --format csv > ledger.csv
    ```
    """
    ledger_queries = commands.ledger_queries
    fmt = fmt or ListFormat.table
    shown = choose_columns(
        columns, wide, default=LIST_COLUMNS, wide_set=TABLE_COLUMNS, known=terms.COLUMNS
    )
    found = ledger_queries.filters(**filters)
    with ledger_queries.listing(
        settings_from("evidence"),
        found,
        limit=limit,
        table_on_terminal=fmt is ListFormat.table and on_terminal(),
    ) as listed:
        emit(
            listed.rows,
            fmt,
            columns=shown if columns or wide else terms.COLUMNS,
            table_columns=shown,
            title="Ledger rows",
        )
    if listed.cut_at is not None:
        typer.echo(
            f"(the first {listed.cut_at:,} rows on this terminal; more match: --limit N, or pipe "
            "or redirect the output, or --format csv, for all)"
        )


@command(app, data_format=True)
@filtered
def export(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Output file ('-' for stdout).")],
    filters: dict[str, Any],  # the values of filter_options' options (`filtered`)
    fmt: Annotated[
        str | None,
        opt(
            "csv|json|jsonl",
            "Default: from FILE's extension (.csv, .json, .jsonl); needed for '-'.",
            "--format",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Stream every (matching) ledger row to FILE in constant memory.

    Examples:

    ```
    $ snapzen ledger export transfers-2026.csv --since 2026-01-01
    $ snapzen ledger export - --format jsonl | gzip > ledger.jsonl.gz
    ```
    """
    ledger_queries = commands.ledger_queries
    found = ledger_queries.filters(**filters)
    kind = ledger_queries.export_format(str(file), fmt)
    new_file(file, overwrite)
    count = ledger_queries.export(settings_from("evidence"), found, file, kind, sys.stdout)
    if str(file) != "-":
        typer.echo(f"exported {count} rows to {file} ({kind})", err=True)


@command(app)
def report(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table (sentences; default) or json.")
    ] = None,
    horizon_days: Annotated[
        int, opt("DAYS", "Show retention ending within this many days.", min=1)
    ] = terms.EXPIRY_HORIZON_DAYS,
    art49_max_months: Annotated[
        int, opt("N", "Warn when an Art. 49 basis is used in more distinct months.")
    ] = terms.ART49_MAX_MONTHS,
    art49_max_per_month: Annotated[
        int, opt("N", "Warn when an Art. 49 basis exceeds this many in one month.")
    ] = terms.ART49_MAX_PER_MONTH,
    client: Annotated[
        str | None,
        opt("NAME", "The Art. 30(2) record kept for this client (processor mode, [[clients]])."),
    ] = None,
) -> None:
    """The Art. 30(1) record of this processing (from the [record] settings and what the
    ledger shows was sent), then transfers by month, destination, basis and origin; withheld
    chats; retention ending soon; a warning when Art. 49 carries regular transfers.

    Examples:

    ```
    $ snapzen ledger report --since 2026-01-01
    $ snapzen ledger report --json
    ```
    """
    ledger_queries = commands.ledger_queries
    found = ledger_queries.filters(since=since, until=until, widget=widget)
    as_json = fmt is Format.json
    result = ledger_queries.build_report(
        settings_from("evidence"),
        found,
        horizon_days=horizon_days,
        art49_max_months=art49_max_months,
        art49_max_per_month=art49_max_per_month,
        client=client,
    )
    if not as_json:
        for line in commands.report_text.text(result):
            typer.echo(line)
    elif result.client_record is not None:
        echo_json({"art30_2_record": result.client_record})
    else:
        echo_json({"art30_record": result.record, **result.report.to_dict()})


@command(app)
def serve(
    host: Annotated[str, opt("HOST", "Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, opt("N", "Port.")] = 8001,
    workdir: Annotated[
        Path | None,
        opt("DIR", "Keep the sanitized snapshot and metadata here (default: a temp dir)."),
    ] = None,
    sql_time_limit_ms: Annotated[int, opt("MS", "Datasette SQL time limit.")] = 5000,
    prepare_only: Annotated[
        bool, opt("", "Write snapshot + metadata, print the command, exit.", "--prepare-only")
    ] = False,
) -> None:
    """Open a read-only (immutable) Datasette on a snapshot without raw payloads, with
    column descriptions and canned queries.

    Examples:

    ```
    $ snapzen ledger serve
    $ snapzen ledger serve --host 0.0.0.0 --port 8001
    ```
    """
    code = commands.auditor_ui.serve(
        settings_from("evidence"),
        host=host,
        port=port,
        workdir=workdir,
        sql_time_limit_ms=sql_time_limit_ms,
        prepare_only=prepare_only,
        say=lambda line: typer.echo(line, err=True),
        show=typer.echo,
    )
    raise typer.Exit(code)


@command(app)
def subject(
    email: Email,
    fmt: RowsFormat = None,
    columns: Columns = None,
    wide: Wide = False,
    case: CaseIds = None,
    ticket: TicketIds = None,
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
    ledger_queries = commands.ledger_queries
    fmt = fmt or ListFormat.table
    shown = choose_columns(
        columns,
        wide,
        default=SUBJECT_TABLE,
        wide_set=terms.SUBJECT_COLUMNS[:11],
        known=terms.SUBJECT_COLUMNS,
    )
    # A reference several people used: refused (exit 2) with the candidate chats.
    settings = settings_from("evidence")
    with ledger_queries.subject_rows(settings, read_email(email), case, ticket) as found:
        if fmt is ListFormat.table:
            typer.echo(f"subject reference: {found.ref}", err=not sys.stdout.isatty())
        count = emit(
            found.rows,
            fmt,
            columns=shown if columns or wide else terms.SUBJECT_COLUMNS,
            table_columns=shown,
            title="Transfers of this data subject",
        )
        forgotten = found.forgotten()
    say(summaries.said("subject", count=count, forgotten=forgotten))


@command(app)
def reconcile(
    since: Annotated[
        datetime | None,
        opt(
            "YYYY-MM-DD",
            "Read Zendesk's tickets changed since this UTC day (default: a day "
            "before the ledger's first chat or run).",
            formats=["%Y-%m-%d"],
        ),
    ] = None,
    max_requests: Annotated[
        int, opt("N", "At most this many export requests (1,000 tickets each).", min=1)
    ] = 1000,
    actor: ActorOption = None,
    fmt: SummaryOption = None,
) -> None:
    """Compare the ledger with Zendesk (read-only there) and report tickets missing,
    unknown, duplicated or pointing at the wrong case, each with what to do. Reads Zendesk's
    incremental export (1,000 tickets a request, 10 requests a minute) and records the check
    in the ledger (event `reconciled`), which `status` shows; a flag Zendesk now settles
    (`ledger flags`) is closed. Exit 0 when they agree, 3 with findings. Run it weekly.

    Examples:

    ```
    $ snapzen ledger reconcile
    $ snapzen ledger reconcile --since 2026-01-01 --json
    ```
    """
    as_json = fmt is Format.json
    settings = settings_from()
    check = commands.reconcile_check.reconcile_check(
        settings,
        actor=actor_name(actor, settings),
        since=since.date() if since else None,
        max_requests=max_requests,
    )
    report = check.as_dict()
    if as_json:
        echo_json(report)
        raise typer.Exit(check.exit_code)
    say(summaries.said("reconcile", r=report))
    if report["found"]:
        rows = [{**f, "ticket_ids": ", ".join(map(str, f["ticket_ids"]))} for f in report["found"]]
        print_rows(rows, ["kind", "case_id", "ticket_ids", "detail", "suggestion"], "findings")
    raise typer.Exit(check.exit_code)


flags = typer.Typer(invoke_without_command=True)
FLAG_COLUMNS = ("case_id", "kind", "ticket_ids", "source", "flagged_at")


@command(flags, group=True)
def flags_listing(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Cases flagged for a person: list (default), resolve.

    Without a command: every open flag, oldest first: the case, the kind (duplicate_tickets,
    ticket_mismatch, ticket_for_withheld), the tickets Zendesk holds for it, what found it and
    when. A flag stays open (and `status` exits 3) until `ledger reconcile` sees Zendesk agree
    with the ledger, or a person records a decision with `ledger flags resolve`.

    Examples:

    ```
    $ snapzen ledger flags
    $ snapzen ledger flags --json
    ```
    """
    if ctx.invoked_subcommand is not None:
        return
    found = commands.flag_desk.listing(settings_from("evidence"))
    if fmt is Format.json:
        echo_json(found)
    elif found:
        print_rows(found, FLAG_COLUMNS, "Open flags")
    else:
        typer.echo("no open flags")


@command(flags, "resolve", refused="flag resolution NOT done")
def flags_resolve(
    case_id: Annotated[
        str, typer.Argument(metavar="CASE_ID", help="The flagged case (see `ledger flags`).")
    ],
    kind: Annotated[
        str, opt("KIND", "The flag: duplicate_tickets, ticket_mismatch or ticket_for_withheld.")
    ],
    reason: Annotated[
        str, opt("TEXT", "What was decided and why (recorded in the chain; no personal data).")
    ],
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Record that a person decided a flagged case (e.g. both tickets kept on purpose): the
    flag closes, chained (event `case_flag_resolved`) with the reason and actor. Refused
    (exit 2) for a case without that flag or one already resolved.

    Examples:

    ```
    $ snapzen ledger flags resolve CASE_ID --kind duplicate_tickets --reason 'both kept: two chats'
    $ snapzen ledger flags resolve CASE_ID --kind ticket_for_withheld --reason 'sent by hand'
    ```
    """
    settings = settings_from()
    done = commands.flag_desk.resolve(
        settings,
        case_id,
        kind,
        reason=reason,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
    )
    typer.echo(f"case {case_id}: flag {kind} resolved (ledger seq {done['seq']})")


app.add_typer(flags, name="flags")
app.add_typer(ledger_evidence.app)  # keygen, checkpoint, cosign, verify, backup, restore, …
app.add_typer(ledger_rights.app)  # erase, access, notices, hold
app.add_typer(ledger_requests.requests, name="requests")
app.add_typer(ledger_requests.notices, name="notices")
app.add_typer(ledger_requests.hold, name="hold")
