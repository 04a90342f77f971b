"""`ledger report` as plain sentences a DPO can read aloud or paste into a record of
processing: the Art. 30 record, then counts with their nouns, legal bases spelled out, no
Python reprs (the document itself, as snapzen.commands.access_text is the access pack's).

Light at import (the standard library and the event names): the CLI's table cells use
its ``basis`` at start-up."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from snapzen.commands.ledger_terms import Event

if TYPE_CHECKING:
    from snapzen.commands.ledger_queries import Report, ReportResult

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


def report_lines(result: Report) -> list[str]:
    end = f"up to (not including) {result.until[:10]}" if result.until else "up to now"
    window = f"from {(result.since or '')[:10] or 'the first entry'} {end}"
    events = [count(n, *EVENT_NOUNS.get(e, (e, e))) for e, n in sorted(result.events.items())]
    destinations = [
        f"{r['recipient']} in {r['destination_country']}: {_sent(r)}" for r in result.by_destination
    ]
    # NBSP keeps "FR 69" on one line when wrapped (undone there).
    origins = [
        f"{r['origin_country'] or 'unknown'}\u00a0{int(r['transfers']):,}" for r in result.by_origin
    ]
    withheld = [f"  {r['reason']}: {count(int(r['cases']), 'chat')}" for r in result.withheld]
    if withheld:
        withheld.insert(0, "Chats withheld (not sent to the recipient), by reason:")
    expiring = ", ".join(f"{r['month']} {int(r['transfers']):,}" for r in result.expiring_by_month)
    return [
        f"Transfer ledger report, {window}.",
        f"Generated {result.generated_at}; the ledger's last entry is #{result.head_seq}.",
        "",
        f"{count(result.transfers, 'chat was', 'chats were')} transferred in this window"
        + (f" (ledger entries: {', '.join(events)})." if events else "."),
        *_section("By month:", [_month(month) for month in result.by_month]),
        *_section("Recipients and destination countries (Art. 30(1)(d), (e)):", destinations),
        *_section("Legal basis of the transfers:", [_basis_line(row) for row in result.by_basis]),
        *_section("Where the visitors were:", [", ".join(origins)] if origins else []),
        "",
        *(withheld or ["No chat was withheld in this window."]),
        "",
        f"Retention ends for {count(result.expiring_total, 'ticket')} within "
        f"{count(result.expiring_horizon_days, 'day')} (by {result.expiring_until})"
        + (f": {expiring}." if expiring else "."),
        "",
        *_art49_lines(result),
    ]


def _section(heading: str, items: list[str]) -> list[str]:
    """A heading and its items, indented, after a blank line; nothing without items."""
    return ["", heading, *(f"  {item}" for item in items)] if items else []


def _sent(row: dict[str, Any]) -> str:
    return count(int(row["transfers"]), "transfer")


def _month(month: dict[str, Any]) -> str:
    """A month's transfers, with each basis's count."""
    parts = [
        f"{basis(k)} {v:,}" for k, v in sorted(month.items()) if k not in ("month", "transfers")
    ]
    return f"{month['month']}: {_sent(month)}" + (f" ({'; '.join(parts)})" if parts else "")


def _basis_line(row: dict[str, Any]) -> str:
    mechanism = f" ({row['mechanism_ref']})" if row.get("mechanism_ref") else ""
    return (
        f"{basis(row['legal_basis'])}{mechanism}: {_sent(row)} in "
        f"{count(int(row['months']), 'month')}, "
        f"first {str(row['first'])[:10]}, last {str(row['last'])[:10]}"
    )


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
    lines.append(result.art49_advice())
    return lines


def text(result: ReportResult) -> list[str]:
    """The whole report, wrapped at 80 columns: the Art. 30(2) record alone for a client;
    otherwise the Art. 30(1) record, then the report."""
    # Lazy: the labels live with the records in the ledger (start-up time of the CLI).
    from snapzen.ledger.evidence.art30_record import LABELS, LABELS_30_2

    if result.client_record is not None:
        title = f"Record of processing activities, Art. 30(2): processing for {result.client}."
        client = result.client_record
        return wrapped(_record_lines(title, LABELS_30_2, client, "c_transfers", "(c)"))
    record = result.record
    assert record is not None
    title = "Record of processing activities, Art. 30(1): chat transcripts to Zendesk."
    lines = _record_lines(title, LABELS, record, "e_transfers", "(e)")
    for summary in record.get("clients", []):
        lines.append(
            f"  Processed for client {summary['client']} (controller established in "
            f"{summary['controller_country']}): {summary['transfers']} transfers, "
            f"{summary['sent_not_restricted']} sent without a restricted transfer, "
            f"{summary['withheld']} withheld; its own record: ledger report --client "
            f"{summary['client']!r}."
        )
    for recipient, n in record["e_derogations"].items():
        lines.append(
            f"  WARNING: {n} transfer(s) to {recipient} rest on an Art. 49 derogation "
            "(per chat: explicit consent or contract), the exception (EDPB 2/2018); give the "
            "recipient an adequacy or safeguards basis in transfer.recipients."
        )
    return wrapped(lines) + wrapped(report_lines(result.report))


def _record_lines(
    title: str, labels: dict[str, str], record: dict[str, Any], transfers: str, point: str
) -> list[str]:
    """An Art. 30 record (1) or (2) as sentences: each labelled field, then its transfers
    (``record[transfers]``, under the article's point ``point``) with their safeguards."""
    lines = [title]
    for key, label in labels.items():
        value = record[key]
        shown = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"  {label}: {shown or '(none)'}.")
    lines.append(f"  {point} Transfers to third countries, with their safeguards:")
    for row in record[transfers]:
        ref = f" ({row['mechanism_ref']})" if row["mechanism_ref"] else ""
        lines.append(
            f"    {row['recipient']} in {row['destination_country']}: {row['transfers']} "
            f"transfers under {row['legal_basis']}{ref}."
        )
    if not record[transfers]:
        lines.append("    none in this window.")
    return lines
