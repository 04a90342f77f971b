"""`ledger report` as plain sentences a DPO can read aloud or paste into a record of
processing: the Art. 30 record, then counts with their nouns, legal bases spelled out, no
Python reprs. The sentences are the template ``templates/ledger_report.txt``; this module
gives it its words (``count``, ``basis``) and wraps its lines at 80 columns.

Light at import (the standard library and the event names): the CLI's table cells use
its ``basis`` at start-up; jinja2 is imported when a report is rendered."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from snapzen.commands.ledger_terms import Event

if TYPE_CHECKING:
    from snapzen.commands.ledger_queries import ReportResult

BASIS_LABELS = {
    "art45": "Art. 45 adequacy",
    "art46": "Art. 46 safeguards",
    "art49_1a": "Art. 49(1)(a) consent",
    "art49_1b": "Art. 49(1)(b) contract",
}
EVENT_NOUNS: dict[str, tuple[str, str]] = {
    Event.TRANSFER: ("transfer", "transfers"),
    Event.ERASED: ("erasure", "erasures"),
    Event.EXPIRED: ("expiry (retention ended)", "expiries (retention ended)"),
}


def count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def basis(code: Any) -> str:
    return BASIS_LABELS.get(str(code), str(code))


def listed(value: Any) -> str:
    return "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def wrapped(lines: list[str], width: int = 80) -> list[str]:
    """Each sentence wrapped at ``width``, continuation lines indented under their item."""
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        more = indent + "  " if indent else ""
        parts = textwrap.wrap(line, width, subsequent_indent=more, break_on_hyphens=False)
        out += [part.replace("\u00a0", " ") for part in parts] or [""]
    return out


def text(result: ReportResult) -> list[str]:
    """The whole report, wrapped at 80 columns: the Art. 30(2) record alone for a client;
    otherwise the Art. 30(1) record, then the report."""
    # Lazy: the labels live with the records in the ledger; jinja2 (start-up time of the CLI).
    from snapzen.commands.templates import TEMPLATES
    from snapzen.ledger.evidence.art30_record import LABELS, LABELS_30_2

    page = TEMPLATES.get_template("ledger_report.txt").render(
        r=result.report,
        record=result.record,
        client=result.client,
        client_record=result.client_record,
        labels=LABELS,
        labels_30_2=LABELS_30_2,
        count=count,
        basis=basis,
        listed=listed,
        repr=repr,
        nouns=EVENT_NOUNS,
        nbsp="\u00a0",
    )
    return wrapped(page.splitlines())
