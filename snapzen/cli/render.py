"""What the CLI draws for people: ledger rows as tables, the `status` table with the notes
below it (templates/said/status_notes.txt, rich markup), the backfill progress bar.

Ledger rows get human labels, a default set of columns that fits 80 columns, and plain
one-line-per-row text when the output is not a terminal; only the table format is translated:
csv/json/jsonl keep the stored codes, which scripts and spreadsheets rely on.

Data never reaches rich as markup: case ids, widget ids, errors and paths come from the APIs,
the configuration or the ledger, and ``[/]`` in one crashed ``status`` while ``[link=…]``
rendered as a hyperlink. Every cell is a ``Text`` (never parsed for markup), the notes are
Texts whose only markup is the style the template gives a whole line
(snapzen.commands.summaries.noted), and consoles are built with emoji codes off (``:x:`` in
data stays text). rich is imported on use: only a terminal needs it (start-up time).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from snapzen.commands import summaries
from snapzen.commands.backfill_progress import Tally
from snapzen.commands.ledger_terms import CaseStatus
from snapzen.commands.report_text import basis
from snapzen.support.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

# Column headers a reader wants; any other column is its name less _id or _ref, in words.
HEADERS = {
    "seq": "#",
    "recorded_at": "when (UTC)",
    "origin_country": "from",
    "destination_country": "to",
    "consent_value": "consent",
    "consent_observed_at": "consent seen (UTC)",
    "data_categories": "data",
    "retention_until": "kept until",
    "prev_hash": "previous hash",
}


def heading(column: str) -> str:
    words = column.removesuffix("_id").removesuffix("_ref")
    return HEADERS.get(column, words.replace("_", " "))


def console(*, stderr: bool = False) -> Console:
    """A console for data-bearing output: emoji codes are not replaced."""
    from rich.console import Console

    return Console(stderr=stderr, emoji=False)


def cell(column: str, value: Any) -> str:
    """A stored value as a reader wants it (basis spelled out, times to the minute)."""
    if value is None:
        return ""
    if column == "legal_basis":
        return basis(value)
    if column in ("recorded_at", "consent_observed_at") and isinstance(value, str):
        return value[:16].replace("T", " ")  # 2026-01-02T10:00:05Z -> 2026-01-02 10:00
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def choose_columns(
    given: str | None,
    wide: bool,
    *,
    default: Sequence[str],
    wide_set: Sequence[str],
    known: Sequence[str],
) -> list[str]:
    """--columns a,b,c (any stored column), --wide (the longer set), or the default."""
    if given and wide:
        raise ConfigError("--columns and --wide disagree: give one")
    if wide or not given:
        return list(wide_set if wide else default)
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"--columns: unknown column {unknown[0]!r}; known: {', '.join(known)}")
    return names


def print_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str, *, plain: bool | None = None
) -> int:
    """Rows as a table, rich on a terminal; otherwise aligned columns, two spaces apart, one
    line per row, never wrapped (like sqlite-utils' plain table output: what `grep`,
    `less -S` and `wc -l` expect). Returns how many."""
    cells = [[cell(name, row.get(name)) for name in columns] for row in rows]
    headers = [heading(name) for name in columns]
    if not (sys.stdout.isatty() if plain is None else not plain):
        widths = [max(len(v) for v in column) for column in zip(headers, *cells, strict=True)]
        for values in [headers, *cells]:
            padded = (v.ljust(w) for v, w in zip(values, widths, strict=True))
            sys.stdout.write("  ".join(padded).rstrip() + "\n")
        return len(cells)
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for header in headers:
        table.add_column(Text(header), no_wrap=True, overflow="ellipsis")
    for values in cells:
        table.add_row(*(Text(value) for value in values))
    console().print(table)
    return len(cells)


def print_status(report: dict[str, Any]) -> None:
    """`status` for people: a rich table per widget, then one line per thing to know."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(f"snapzen status — {report['database']}"),
        caption="pend pending · push pushing · sync synced · held withheld · fail failed · "
        "ign ignored · oldest: age of the oldest unsynced chat",
    )
    # Widget ids are UUIDs: let them fold so the counts stay readable on an 80-column terminal.
    table.add_column("widget", overflow="fold", min_width=10)
    table.add_column("cursor", no_wrap=True)
    # Short headers (pending, pushing, synced, withheld, failed, ignored; oldest unsynced).
    for column in ("pend", "push", "sync", "held", "fail", "ign"):
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("oldest", no_wrap=True)
    for widget, info in report["widgets"].items():
        counts = info["counts"]
        table.add_row(
            Text(widget),
            Text(info["cursor"] or "-"),
            *(str(counts[s]) for s in CaseStatus),
            summaries.span(info["oldest_unsynced_age_seconds"]),
        )
    out = console()
    out.print(table)
    for note in summaries.noted("status_notes", r=report):
        out.print(note)  # a Text: the template's styles, its values never read as markup


class RichProgress(Tally):
    """Backfill progress on a terminal: a bar over the tally of
    snapzen.commands.backfill_progress that fits 80 columns; the description carries the day
    and the live counts (off a terminal, its JSON log lines are used instead)."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        # Log lines go to a file while the bar is drawn (log_file); anything else written to
        # stderr meanwhile is printed above the bar by rich, not through it.
        self.bar = Progress(
            "{task.description}",
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self.task: Any = None

    def _describe(self) -> str:
        where = f"{self.day} " if self.day else ""
        return f"{where}fetched {self.fetched:,} created {self.created:,}"

    def changed(self) -> None:
        self.bar.update(self.task, completed=self.done, description=self._describe())

    def start(self, total: int, skipped: int) -> None:
        super().start(total, skipped)
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=total, completed=skipped)

    def finish(self) -> None:
        self.changed()
        self.bar.stop()
