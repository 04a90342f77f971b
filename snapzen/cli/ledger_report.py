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
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            metavar="NAME",
            help="The Art. 30(2) record kept for this client (processor mode, [[clients]]).",
        ),
    ] = None,
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
    _require_record(settings, client)
    as_json = pick_format(fmt, json_flag, ReportFormat.table, ReportFormat.json)
    if client is not None:
        _client_report(db.conn, settings, client, where, params, as_json is ReportFormat.json)
        return
    from snapzen.ledger.client_record import client_summary, scoped

    own_where, own_params = scoped(where, params, None) if settings.clients else (where, params)
    record = art30_record(
        db.conn,
        settings.record,
        settings.transfer,
        own_where,
        own_params,
        snapengage_days=settings.snapengage.retention_days,
    )
    if settings.clients:
        record["clients"] = client_summary(db.conn, settings.clients, where, params)
    if as_json is ReportFormat.json:
        echo_json({"art30_record": record, **result.to_dict()})
    else:
        from snapzen.cli.report_text import report_lines, wrapped

        _print_record(record)
        for line in wrapped(report_lines(result)):
            typer.echo(line)


def _require_record(settings: Any, client: str | None) -> None:
    """Exit 2, listing them, while mandatory Art. 30 fields are empty: a record with holes
    is not one to hand a regulator."""
    from snapzen.ledger.record import missing_fields
    from snapzen.support.errors import ConfigError

    missing = missing_fields(settings.record, processor=client is not None)
    if not settings.transfer.controller_country:
        # Read-only commands load without the sync settings; the record still needs this one.
        missing.insert(0, "transfer.controller_country (SNAPZEN_TRANSFER__CONTROLLER_COUNTRY)")
    if client is not None:
        found = next((c for c in settings.clients if c.name == client), None)
        if found is not None and not found.contact.strip():
            missing.append(f"clients[{client}].contact (SNAPZEN_CLIENTS)")
    if missing:
        raise ConfigError(
            "ledger report: the Art. 30 record lacks mandatory fields: " + "; ".join(missing)
        )


def _client_report(
    conn: Any, settings: Any, name: str, where: str, params: list[Any], as_json: bool
) -> None:
    from snapzen.cli.report_text import wrapped
    from snapzen.ledger.client_record import LABELS_30_2, art30_2_record
    from snapzen.support.errors import ConfigError

    found = next((c for c in settings.clients if c.name == name), None)
    if found is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise ConfigError(f"--client {name!r}: no such client in [[clients]] (known: {known})")
    record = art30_2_record(conn, settings.record, found, where, params)
    if as_json:
        echo_json({"art30_2_record": record})
        return
    title = f"Record of processing activities, Art. 30(2): processing for {name}."
    lines = _record_lines(title, LABELS_30_2, record, "c_transfers", "(c)")
    for line in wrapped(lines):
        typer.echo(line)


def _print_record(record: dict[str, Any]) -> None:
    """The Art. 30(1) record, fields in the article's order; plain sentences (no markup)."""
    from snapzen.cli.report_text import wrapped
    from snapzen.ledger.record import LABELS  # lazy: start-up time

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
    for recipient, count in record["e_derogations"].items():
        lines.append(
            f"  WARNING: {count} transfer(s) to {recipient} rest on an Art. 49 derogation "
            "(per chat: explicit consent or contract), the exception (EDPB 2/2018); give the "
            "recipient an adequacy or safeguards basis in transfer.recipients."
        )
    for line in wrapped(lines):
        typer.echo(line)


def _record_lines(
    title: str, labels: dict[str, str], record: dict[str, Any], transfers: str, point: str
) -> list[str]:
    """An Art. 30 record (1) or (2) as sentences: each labelled field, then its transfers
    (``record[transfers]``, under the article's point ``point``) with their safeguards."""
    lines = [title]
    for key, label in labels.items():
        value = record[key]
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"  {label}: {text or '(none)'}.")
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
