"""`ledger report` as plain sentences a DPO can read aloud or paste into a record of
processing: counts with their nouns, legal bases spelled out, no Python reprs."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from snapzen.cli.tables import BASIS_LABELS
from snapzen.commands.ledger_terms import Event

if TYPE_CHECKING:
    from snapzen.commands.ledger_report import Report

EVENT_NOUNS: dict[str, tuple[str, str]] = {
    Event.TRANSFER: ("transfer", "transfers"),
    Event.ERASED: ("erasure", "erasures"),
    Event.EXPIRED: ("expiry (retention ended)", "expiries (retention ended)"),
}


def count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def basis(code: Any) -> str:
    return BASIS_LABELS.get(str(code), str(code))


def _day(bound: str | None, fallback: str) -> str:
    return bound[:10] if bound else fallback


def report_lines(result: Report) -> list[str]:
    end = f"up to (not including) {_day(result.until, '')}" if result.until else "up to now"
    window = f"from {_day(result.since, 'the first entry')} {end}"
    lines = [
        f"Transfer ledger report, {window}.",
        f"Generated {result.generated_at}; the ledger's last entry is #{result.head_seq}.",
        "",
    ]
    events = [count(n, *EVENT_NOUNS.get(e, (e, e))) for e, n in sorted(result.events.items())]
    lines.append(
        f"{count(result.transfers, 'chat was', 'chats were')} transferred in this window"
        + (f" (ledger entries: {', '.join(events)})." if events else ".")
    )
    if result.by_month:
        lines += ["", "By month:"]
        for month in result.by_month:
            parts = [
                f"{basis(k)} {v:,}"
                for k, v in sorted(month.items())
                if k not in ("month", "transfers")
            ]
            lines.append(
                f"  {month['month']}: {count(int(month['transfers']), 'transfer')}"
                + (f" ({'; '.join(parts)})" if parts else "")
            )
    if result.by_destination:
        lines += ["", "Recipients and destination countries (Art. 30(1)(d), (e)):"]
        for row in result.by_destination:
            lines.append(
                f"  {row['recipient']} in {row['destination_country']}: "
                f"{count(int(row['transfers']), 'transfer')}"
            )
    if result.by_basis:
        lines += ["", "Legal basis of the transfers:"]
        for row in result.by_basis:
            mechanism = f" ({row['mechanism_ref']})" if row.get("mechanism_ref") else ""
            lines.append(
                f"  {basis(row['legal_basis'])}{mechanism}: "
                f"{count(int(row['transfers']), 'transfer')} in "
                f"{count(int(row['months']), 'month')}, "
                f"first {str(row['first'])[:10]}, last {str(row['last'])[:10]}"
            )
    if result.by_origin:
        lines += ["", "Where the visitors were:"]
        lines.append(
            "  "
            + ", ".join(  # NBSP keeps "FR 69" on one line when wrapped (undone there)
                f"{row['origin_country'] or 'unknown'}\u00a0{int(row['transfers']):,}"
                for row in result.by_origin
            )
        )
    lines.append("")
    if result.withheld:
        lines.append("Chats withheld (not sent to the recipient), by reason:")
        for row in result.withheld:
            lines.append(f"  {row['reason']}: {count(int(row['cases']), 'chat')}")
    else:
        lines.append("No chat was withheld in this window.")
    lines.append("")
    lines.append(
        f"Retention ends for {count(result.expiring_total, 'ticket')} within "
        f"{count(result.expiring_horizon_days, 'day')} (by {result.expiring_until})"
        + (
            ": " + ", ".join(
                f"{r['month']} {int(r['transfers']):,}" for r in result.expiring_by_month
            ) + "."
            if result.expiring_by_month else "."
        )
    )  # fmt: skip
    lines += ["", *_art49_lines(result)]
    return lines


def wrapped(lines: list[str], width: int = 80) -> list[str]:
    """Each sentence wrapped at ``width``, continuation lines indented under their item."""
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        more = indent + "  " if indent else ""
        parts = textwrap.wrap(line, width, subsequent_indent=more, break_on_hyphens=False)
        out += [part.replace("\u00a0", " ") for part in parts] or [""]
    return out


def _art49_lines(result: Report) -> list[str]:
    regular = result.art49_regular
    if not result.art49:
        return ["No transfer relied on an Art. 49 derogation."]
    if not regular:
        return ["Art. 49 derogations were used occasionally (below the warning thresholds)."]
    lines = ["WARNING: Art. 49 derogations carry regular, repeated transfers:"]
    for finding in regular:
        lines.append(
            f"  {basis(finding.basis)}: {count(finding.transfers, 'transfer')} in "
            f"{count(finding.months, 'month')} (busiest {finding.busiest_month}: "
            f"{count(finding.busiest_count, 'transfer')})."
        )
    lines.append(
        "EDPB Guidelines 2/2018 read Art. 49 restrictively: derogations are for occasional "
        "transfers outside the regular course of action, not for a scheduled job. Put an "
        "Art. 45 adequacy decision or Art. 46 safeguard (e.g. SCCs) in place. Warning "
        f"threshold (snapzen's heuristic, not a figure from the Guidelines): more than "
        f"{count(result.art49_max_months, 'month')}, or more than "
        f"{count(result.art49_max_per_month, 'transfer')} in one month."
    )
    return lines
