"""Ledger rows as tables people can read: human labels, a default set of columns that fits
80 columns, and plain one-line-per-row text when the output is not a terminal.

Only the table format is translated: csv/json/jsonl keep the stored codes, which scripts and
spreadsheets rely on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from snapzen.commands.report_text import BASIS_LABELS
from snapzen.support.errors import ConfigError

HEADERS = {
    "seq": "#",
    "recorded_at": "when (UTC)",
    "case_id": "case",
    "widget_id": "widget",
    "subject_ref": "subject",
    "origin_country": "from",
    "destination_country": "to",
    "legal_basis": "legal basis",
    "mechanism_ref": "mechanism",
    "consent_variable": "consent variable",
    "consent_value": "consent",
    "consent_source": "consent source",
    "consent_observed_at": "consent seen (UTC)",
    "data_categories": "data",
    "ticket_id": "ticket",
    "retention_until": "kept until",
    "run_id": "run",
    "prev_hash": "previous hash",
}


def label(column: str) -> str:
    return HEADERS.get(column, column.replace("_", " "))


def cell(column: str, value: Any) -> str:
    """A stored value as a reader wants it (basis spelled out, times to the minute)."""
    if value is None:
        return ""
    if column == "legal_basis":
        return BASIS_LABELS.get(str(value), str(value))
    if column in ("recorded_at", "consent_observed_at") and isinstance(value, str):
        return value[:16].replace("T", " ")  # 2026-01-02T10:00:05Z -> 2026-01-02 10:00
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def choose_columns(
    given: str | None, wide: bool, *, default: Sequence[str], wide_set: Sequence[str],
    known: Sequence[str],
) -> list[str]:  # fmt: skip
    """--columns a,b,c (any stored column), --wide (the longer set), or the default."""
    if given and wide:
        raise ConfigError("--columns and --wide disagree: give one")
    if wide:
        return list(wide_set)
    if not given:
        return list(default)
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"--columns: unknown column {unknown[0]!r}; known: {', '.join(known)}")
    return names


def plain_lines(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[str]:
    """Aligned columns, two spaces apart, one line per row, never wrapped (like
    sqlite-utils' plain table output): what `grep`, `less -S` and `wc -l` expect."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(value)) for w, value in zip(widths, row, strict=True)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def print_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str, *, plain: bool | None = None
) -> int:
    """Rows as a table: rich on a terminal, plain text otherwise; returns how many."""
    cells = [[cell(name, row.get(name)) for name in columns] for row in rows]
    headers = [label(name) for name in columns]
    if plain is None:
        plain = not sys.stdout.isatty()
    if plain:
        for text in plain_lines(cells, headers):
            sys.stdout.write(text + "\n")
        return len(cells)
    from rich import box  # lazy: start-up time (only terminal tables need rich)
    from rich.table import Table
    from rich.text import Text

    from snapzen.cli.render import console

    # Text cells: data is shown as it is, never read as rich markup ("[/]" crashed, "[link=…]"
    # became a hyperlink).
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for header in headers:
        table.add_column(Text(header), no_wrap=True, overflow="ellipsis")
    for values in cells:
        table.add_row(*(Text(value) for value in values))
    console().print(table)
    return len(cells)
