"""`snapzen ledger report`: the Art. 30(1) record, then what the ledger shows was sent."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from snapzen.cli.common import ConfigOption, JsonFlag, echo_json, handle_errors, pick_format
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


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


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
    settings = _evidence_settings(config)
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
    record = art30_record(
        db.conn, settings.record, settings.consent, where, params, transfer=settings.transfer
    )
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
