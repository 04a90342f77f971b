"""`snapzen ledger list | export`, and the row output `ledger subject` shares with them."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from snapzen.cli.common import (
    ConfigOption,
    JsonFlag,
    OverwriteOption,
    handle_errors,
    new_file,
    pick_format,
)
from snapzen.cli.ledger import (
    Since,
    Until,
    Widget,
    _evidence_settings,
    _known_widget,
    _open_read,
    app,
)
from snapzen.ledger import audit  # stdlib only; its constants are option defaults
from snapzen.ledger.events import Event as LedgerEvent
from snapzen.support import errors
from snapzen.support.atomic import atomic_text

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


Country = Annotated[str | None, typer.Option(help="Only this visitor origin country (ISO).")]
Basis = Annotated[
    str | None, typer.Option(help="Only this legal basis: art45, art46, art49_1a, art49_1b.")
]
Ticket = Annotated[int | None, typer.Option(help="Only this Zendesk ticket id.")]
EventOption = Annotated[
    LedgerEvent | None,
    typer.Option(
        "--event",
        metavar="EVENT",
        help="Only rows of this event (snapzen.ledger.events): "
        + ", ".join(e.value for e in LedgerEvent)
        + ".",
    ),
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        metavar="NAME,NAME",
        help="Table columns, comma-separated, from the stored column names (see --wide).",
    ),
]
Wide = Annotated[bool, typer.Option("--wide", help="Table: more columns (wider than 80).")]


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
    typer.Option(
        "--format", help="table (default; plain text when piped or redirected), csv, json, jsonl."
    ),
]


@app.command("list")
@handle_errors
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
        typer.Option(
            min=1,
            help=f"At most this many rows (a table on a terminal shows {TABLE_LIMIT} unless "
            "given; piped or redirected output has no cap).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """List ledger rows in chain order, filtered; piped, redirected, csv, json and jsonl output
    give every match."""
    from snapzen.cli.tables import choose_columns

    fmt = _list_format(fmt, json_flag)
    shown = choose_columns(
        columns, wide, default=LIST_COLUMNS, wide_set=TABLE_COLUMNS, known=audit.COLUMNS
    )
    filters = audit.Filters.from_cli(
        since=since, until=until, widget=widget, country=country, basis=basis, ticket=ticket,
        event=event.value if event else None,
    )  # fmt: skip
    capped = fmt is ListFormat.table and limit is None and on_terminal()
    settings = _evidence_settings(config)
    db = _open_read(settings)
    _known_widget(settings, db, widget)
    # One row past the cap tells "exactly 1,000" from "more than 1,000".
    rows = audit.iter_transfers(db.conn, filters, limit=TABLE_LIMIT + 1 if capped else limit)
    more = False
    if capped:
        first = list(rows)
        more = len(first) > TABLE_LIMIT
        rows = iter(first[:TABLE_LIMIT])
    _emit(
        rows,
        fmt,
        columns=shown if columns or wide else audit.COLUMNS,
        table_columns=shown,
        title="Ledger rows",
    )
    if more:
        typer.echo(
            f"(the first {TABLE_LIMIT:,} rows on this terminal; more match: --limit N, or pipe "
            "or redirect the output, or --format csv, for all)"
        )


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
    event: EventOption = None,
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
        event=event.value if event else None,
    )  # fmt: skip
    if json_flag:
        if fmt not in (None, "json"):
            raise errors.ConfigError(f"--json and --format {fmt} disagree: give one")
        fmt = "json"
    kind = export_format(str(file), fmt)
    new_file(file, overwrite)
    settings = _evidence_settings(config)
    db = _open_read(settings)
    _known_widget(settings, db, widget)
    rows = audit.iter_transfers(db.conn, filters)
    if str(file) == "-":
        audit.write_rows(rows, sys.stdout, kind, audit.COLUMNS)
        return
    with atomic_text(file) as handle:
        count = audit.write_rows(rows, handle, kind, audit.COLUMNS)
    typer.echo(f"exported {count} rows to {file} ({kind})", err=True)
