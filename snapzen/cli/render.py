"""`status` for people: a rich table per widget, then one line per thing to know.

Data never reaches rich as markup: case ids, widget ids, errors and paths come from the APIs,
the configuration or the ledger, and ``[/]`` in one crashed ``status`` while ``[link=…]``
rendered as a hyperlink. Every cell and line is a ``Text`` (never parsed for markup), its
style given apart, and consoles are built with emoji codes off (``:x:`` in data stays text).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from snapzen.commands.ledger_terms import CaseStatus
from snapzen.commands.summaries import age, status_notes

STYLES = {"": "", "warning": "bold yellow", "alert": "bold red"}


def console(*, stderr: bool = False) -> Console:
    """A console for data-bearing output: emoji codes are not replaced."""
    return Console(stderr=stderr, emoji=False)


def print_status(report: dict[str, Any]) -> None:
    out = console()
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
            age(info["oldest_unsynced_age_seconds"]),
        )
    out.print(table)
    for style, line in status_notes(report):  # each a Text: data is never read as markup
        out.print(Text(line, style=STYLES[style]))
