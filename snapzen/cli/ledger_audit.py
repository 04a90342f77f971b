"""`snapzen ledger list | export | report | serve`: what an auditor reads, read-only.

Thin over snapzen.commands.ledger_queries and .auditor_ui; the rows' output
(a table, csv, json, jsonl) is shared with `ledger subject`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from snapzen.cli.common import (
    ConfigOption,
    Format,
    JsonFlag,
    OverwriteOption,
    command,
    echo_json,
    evidence_settings,
    new_file,
    opt,
    pick_format,
    wants_json,
)
from snapzen.cli.ledger_options import Since, Until, Widget
from snapzen.cli.tables import choose_columns, print_rows
from snapzen.commands import ledger_terms as terms  # light: the options' names and defaults
from snapzen.support import errors
from snapzen.support.atomic import atomic_text

app = typer.Typer()

# A table drawn on a terminal stops here (a million rows on a screen help nobody) and says so
# on stdout; piped or redirected output, and csv/json/jsonl, have no cap but --limit.
TABLE_LIMIT = 1000
# What `ledger list` shows by default: fits 80 columns with the legal basis spelled out.
LIST_COLUMNS = (
    "seq", "recorded_at", "event", "origin_country", "destination_country", "legal_basis",
    "ticket_id",
)  # fmt: skip
# --wide: the longer set (wider than 80 columns; piped, it is still one line per row).
TABLE_COLUMNS = (
    "seq", "event", "recorded_at", "widget_id", "origin_country", "recipient",
    "destination_country", "legal_basis", "ticket_id", "retention_until", "subject_ref",
)  # fmt: skip


def on_terminal() -> bool:
    """Whether stdout is a terminal (a person reading), not a pipe or a file."""
    return sys.stdout.isatty()


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


Country = Annotated[str | None, opt("CC", "Only this visitor origin country (ISO).")]
Basis = Annotated[
    str | None, opt("BASIS", "Only this legal basis: art45, art46, art49_1a, art49_1b.")
]
Ticket = Annotated[int | None, opt("ID", "Only this Zendesk ticket id.")]
EventOption = Annotated[
    terms.Event | None,
    opt("EVENT", f"Only rows of this event (snapzen.ledger.evidence.events): "
        f"{', '.join(e.value for e in terms.Event)}.", "--event"),
]  # fmt: skip
Columns = Annotated[
    str | None,
    opt("NAME,NAME", "Table columns, comma-separated, from the stored column names (see "
        "--wide).", "--columns"),
]  # fmt: skip
Wide = Annotated[bool, opt("", "Table: more columns (wider than 80).", "--wide")]
FormatOption = Annotated[
    ListFormat | None,
    typer.Option("--format", help="table (default; plain text when piped or redirected), csv, "
                 "json, jsonl."),
]  # fmt: skip


def emit(
    rows: Iterator[dict[str, Any]],
    fmt: ListFormat,
    *,
    columns: Iterable[str],
    table_columns: Iterable[str],
    title: str,
) -> int:
    """Rows on stdout as a table, or csv/json/jsonl with only ``columns``; the count."""
    from snapzen.commands.ledger_queries import write_rows  # lazy: start-up time

    if fmt is ListFormat.table:
        return print_rows(rows, list(table_columns), title)
    names = list(columns)
    picked = ({name: row.get(name) for name in names} for row in rows)  # --columns: only those
    return write_rows(picked, sys.stdout, fmt.value, names)  # type: ignore[arg-type]


EXPORT_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def export_format(path: str, given: str | None) -> str:
    """The format, checked against FILE's extension: `export t.xlsx` must not write CSV
    into a file a spreadsheet will then refuse (or worse, misread)."""
    if given is not None and given not in ("csv", "json", "jsonl"):
        raise errors.ConfigError("--format must be csv, json or jsonl for an export")
    if path == "-":
        return given or "csv"
    suffix = Path(path).suffix.lower()
    by_name = EXPORT_SUFFIXES.get(suffix)
    if by_name is None and not (given and not suffix):
        raise errors.ConfigError(
            f"{path}: cannot export to a {suffix or 'extension-less'} file; name it .csv, "
            ".json or .jsonl (or give --format with a name without extension)"
        )
    if given and by_name and given != by_name:
        raise errors.ConfigError(f"{path} is named {suffix} but --format is {given}: give one")
    return by_name or given or "csv"


def list_format(fmt: ListFormat | None, json_flag: bool) -> ListFormat:
    return pick_format(fmt, json_flag, ListFormat.table, ListFormat.json)


@command(app, "list")
def list_(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    country: Country = None,
    basis: Basis = None,
    ticket: Ticket = None,
    event: EventOption = None,
    fmt: FormatOption = None,
    json_flag: JsonFlag = False,
    columns: Columns = None,
    wide: Wide = False,
    limit: Annotated[
        int | None,
        opt("N", f"At most this many rows (a table on a terminal shows {TABLE_LIMIT} unless "
            "given; piped or redirected output has no cap).", min=1),
    ] = None,
    config: ConfigOption = None,
) -> None:  # fmt: skip
    """List ledger rows in chain order, filtered; piped, redirected, csv, json and jsonl output
    give every match.

    Examples:

    ```
    $ snapzen ledger list --since 2026-01-01 --basis art49_1a
    $ snapzen ledger list --wide --format csv > ledger.csv
    ```
    """
    from snapzen.commands import ledger_queries  # lazy: start-up time (sqlite_utils)

    fmt = list_format(fmt, json_flag)
    shown = choose_columns(
        columns, wide, default=LIST_COLUMNS, wide_set=TABLE_COLUMNS, known=terms.COLUMNS
    )
    found = ledger_queries.filters(
        since=since, until=until, widget=widget, country=country, basis=basis, ticket=ticket,
        event=event.value if event else None,
    )  # fmt: skip
    capped = fmt is ListFormat.table and limit is None and on_terminal()
    settings = evidence_settings(config)
    # One row past the cap tells "exactly 1,000" from "more than 1,000".
    rows = ledger_queries.ledger_rows(settings, found, limit=TABLE_LIMIT + 1 if capped else limit)
    more = False
    if capped:
        first = list(rows)
        more = len(first) > TABLE_LIMIT
        rows = iter(first[:TABLE_LIMIT])
    emit(
        rows,
        fmt,
        columns=shown if columns or wide else terms.COLUMNS,
        table_columns=shown,
        title="Ledger rows",
    )
    if more:
        typer.echo(
            f"(the first {TABLE_LIMIT:,} rows on this terminal; more match: --limit N, or pipe "
            "or redirect the output, or --format csv, for all)"
        )


@command(app)
def export(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Output file ('-' for stdout).")],
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    country: Country = None,
    basis: Basis = None,
    ticket: Ticket = None,
    event: EventOption = None,
    fmt: Annotated[
        str | None,
        opt("csv|json|jsonl", "Default: from FILE's extension (.csv, .json, .jsonl); needed "
            "for '-'.", "--format"),
    ] = None,
    json_flag: JsonFlag = False,
    overwrite: OverwriteOption = False,
    config: ConfigOption = None,
) -> None:  # fmt: skip
    """Stream every (matching) ledger row to FILE in constant memory.

    Examples:

    ```
    $ snapzen ledger export transfers-2026.csv --since 2026-01-01
    $ snapzen ledger export - --format jsonl | gzip > ledger.jsonl.gz
    ```
    """
    from snapzen.commands import ledger_queries  # lazy: start-up time (sqlite_utils)

    found = ledger_queries.filters(
        since=since, until=until, widget=widget, country=country, basis=basis, ticket=ticket,
        event=event.value if event else None,
    )  # fmt: skip
    if json_flag:
        if fmt not in (None, "json"):
            raise errors.ConfigError(f"--json and --format {fmt} disagree: give one")
        fmt = "json"
    kind = export_format(str(file), fmt)
    new_file(file, overwrite)
    rows = ledger_queries.ledger_rows(evidence_settings(config), found)
    if str(file) == "-":
        ledger_queries.write_rows(rows, sys.stdout, kind, terms.COLUMNS)  # type: ignore[arg-type]
        return
    with atomic_text(file) as handle:
        count = ledger_queries.write_rows(rows, handle, kind, terms.COLUMNS)  # type: ignore[arg-type]
    typer.echo(f"exported {count} rows to {file} ({kind})", err=True)


@command(app)
def report(
    since: Since = None,
    until: Until = None,
    widget: Widget = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table (sentences; default) or json.")
    ] = None,
    json_flag: JsonFlag = False,
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
    config: ConfigOption = None,
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
    from snapzen.commands import ledger_queries, report_text  # lazy: start-up

    found = ledger_queries.filters(since=since, until=until, widget=widget)
    as_json = wants_json(fmt, json_flag)
    result = ledger_queries.build_report(
        evidence_settings(config), found, horizon_days=horizon_days,
        art49_max_months=art49_max_months, art49_max_per_month=art49_max_per_month,
        client=client,
    )  # fmt: skip
    if not as_json:
        for line in report_text.text(result):
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
    config: ConfigOption = None,
) -> None:
    """Open a read-only (immutable) Datasette on a snapshot without raw payloads, with
    column descriptions and canned queries.

    Examples:

    ```
    $ snapzen ledger serve
    $ snapzen ledger serve --host 0.0.0.0 --port 8001
    ```
    """
    from snapzen.commands.auditor_ui import serve as serve_ui  # lazy: start-up time

    code = serve_ui(
        evidence_settings(config), host=host, port=port, workdir=workdir,
        sql_time_limit_ms=sql_time_limit_ms, prepare_only=prepare_only,
        say=lambda line: typer.echo(line, err=True), show=typer.echo,
    )  # fmt: skip
    raise typer.Exit(code)
