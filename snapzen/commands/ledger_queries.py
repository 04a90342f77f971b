"""`snapzen ledger list | export | subject | report`: what the ledger shows, for auditors.

Each opens the ledger read-only (no lock: an audit never waits for a sync). `list`, `export`
and `subject` stream rows, filtered, in chain order, inside a block that closes the ledger;
the CLI renders them (a table, or csv/json/jsonl through ``write_rows``); `export` writes its
file (or stdout) itself. `report` is the Art. 30(1) record (or a client's Art. 30(2) record),
then what the ledger shows was sent: by month, destination, basis and origin, withheld chats,
retention ending soon, and Art. 49 carrying regular transfers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from snapzen.commands.ledger_open import known_widget, subject_of
from snapzen.commands.ledger_terms import TABLE_LIMIT
from snapzen.ledger.evidence import audit
from snapzen.ledger.evidence.art30_record import (
    art30_2_record,
    art30_record,
    client_summary,
    missing_fields,
    scoped,
)
from snapzen.ledger.evidence.audit import Filters as Filters
from snapzen.ledger.evidence.audit import Report as Report  # for the CLI
from snapzen.ledger.evidence.audit import write_rows as write_rows  # csv, json, jsonl, streamed
from snapzen.ledger.rights import collisions
from snapzen.ledger.rights.forget import note
from snapzen.ledger.store.db import open_ledger
from snapzen.support.atomic import atomic_text
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings
from snapzen.support.settings_gdpr import Client

# The filters of `list`, `export` and `report` (exit 2 for a bad date or basis), named here so
# the CLI reaches them through commands/.
filters = Filters.from_cli


EXPORT_SUFFIXES: dict[str, audit.Format] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@contextmanager
def ledger_rows(
    settings: Settings, found: Filters, *, limit: int | None = None
) -> Iterator[Iterator[dict[str, Any]]]:
    """The matching rows in chain order, read while the block runs; the ledger is closed when
    it ends. Exit 2 for a --widget neither configured nor in the ledger, on entering (before
    any row is read)."""
    with open_ledger(settings.ledger, read_only=True) as db:
        known_widget(settings, db, found.widget)
        yield audit.iter_transfers(db.conn, found, limit=limit)


@dataclass
class Listing:
    rows: Iterator[dict[str, Any]]
    cut_at: int | None  # a capped listing: how many it shows when more rows match


@contextmanager
def listing(
    settings: Settings, found: Filters, *, limit: int | None, table_on_terminal: bool
) -> Iterator[Listing]:
    """`ledger list`: the matching rows, at most ``limit``; a table on a terminal without
    --limit shows the first TABLE_LIMIT rows (and ``cut_at`` when more match). The ledger is
    closed when the block ends."""
    if not table_on_terminal or limit is not None:
        with ledger_rows(settings, found, limit=limit) as rows:
            yield Listing(rows=rows, cut_at=None)
        return
    # One row past the cap tells "exactly 1,000" from "more than 1,000".
    with ledger_rows(settings, found, limit=TABLE_LIMIT + 1) as rows:
        first = list(rows)
        cut_at = TABLE_LIMIT if len(first) > TABLE_LIMIT else None
        yield Listing(rows=iter(first[:TABLE_LIMIT]), cut_at=cut_at)


def export_format(path: str, given: str | None) -> audit.Format:
    """The format, checked against FILE's extension: `export t.xlsx` must not write CSV
    into a file a spreadsheet will then refuse (or worse, misread)."""
    if given not in (None, "csv", "json", "jsonl"):
        raise ConfigError("--format must be csv, json or jsonl for an export")
    named: audit.Format | None = given  # type: ignore[assignment]
    if path == "-":
        return named or "csv"
    suffix = Path(path).suffix.lower()
    by_name = EXPORT_SUFFIXES.get(suffix)
    if by_name is None and not (given and not suffix):
        raise ConfigError(
            f"{path}: cannot export to a {suffix or 'extension-less'} file; name it .csv, "
            ".json or .jsonl (or give --format with a name without extension)"
        )
    if given and by_name and given != by_name:
        raise ConfigError(f"{path} is named {suffix} but --format is {given}: give one")
    return by_name or named or "csv"


def export(
    settings: Settings, found: Filters, file: Path, kind: audit.Format, stdout: TextIO
) -> int:
    """`ledger export`: every matching row to ``file`` ('-': ``stdout``) in ``kind``
    (``export_format``), streamed; how many. A file is written atomically, and only once the
    ledger is open and the filters are known good, so an error leaves no file behind."""
    with ledger_rows(settings, found) as rows:
        if str(file) == "-":
            return write_rows(rows, stdout, kind, audit.COLUMNS)
        with atomic_text(file) as handle:
            return write_rows(rows, handle, kind, audit.COLUMNS)


@dataclass
class SubjectRows:
    ref: str  # the HMAC reference, printed instead of the email
    rows: Iterator[dict[str, Any]]
    # Why nothing may be found: the months the ledger has forgotten (None: none forgotten).
    forgotten: Callable[[], str | None]


@contextmanager
def subject_rows(
    settings: Settings, email: str, case_ids: Sequence[str] | None, ticket_ids: Sequence[int] | None
) -> Iterator[SubjectRows]:
    """Every transfer of one person, read while the block runs; the ledger is closed when it
    ends. SubjectCollision (exit 2), on entering, for a reference several people used, until
    narrowed by case or ticket ids."""
    ref = subject_of(settings, email)
    with open_ledger(settings.ledger, read_only=True) as db:
        selected = collisions.select_cases(db.conn, ref, case_ids or (), ticket_ids or ())
        rows = audit.subject_transfers(db.conn, ref)
        if selected is not None:
            rows = (row for row in rows if row["case_id"] in selected)
        yield SubjectRows(ref=ref, rows=rows, forgotten=lambda: note(db.conn))


# ---------------------------------------------------------------- report


@dataclass
class ReportResult:
    report: Report
    record: dict[str, Any] | None = None  # Art. 30(1): the controller's own record
    client: str | None = None
    client_record: dict[str, Any] | None = None  # Art. 30(2), with --client


def require_record(settings: Settings, client: Client | None) -> None:
    """Exit 2, listing them, while mandatory Art. 30 fields are empty: a record with holes
    is not one to hand a regulator."""
    missing = missing_fields(settings.record, processor=client is not None)
    if not settings.transfer.controller_country:
        # Read-only commands load without the sync settings; the record still needs this one.
        missing.insert(0, "transfer.controller_country (SNAPZEN_TRANSFER__CONTROLLER_COUNTRY)")
    if client is not None and not client.contact.strip():
        missing.append(f"clients[{client.name}].contact (SNAPZEN_CLIENTS)")
    if missing:
        raise ConfigError(
            "ledger report: the Art. 30 record lacks mandatory fields: " + "; ".join(missing)
        )


def build_report(
    settings: Settings,
    found: Filters,
    *,
    horizon_days: int = audit.EXPIRY_HORIZON_DAYS,
    art49_max_months: int = audit.ART49_MAX_MONTHS,
    art49_max_per_month: int = audit.ART49_MAX_PER_MONTH,
    client: str | None = None,
) -> ReportResult:
    """The report, and the record it starts with; exit 2 for an incomplete record or an
    unknown --client."""
    entry = next((c for c in settings.clients if c.name == client), None)
    if client is not None and entry is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise ConfigError(f"--client {client!r}: no such client in [[clients]] (known: {known})")
    require_record(settings, entry)
    with open_ledger(settings.ledger, read_only=True) as db:
        known_widget(settings, db, found.widget)
        report = audit.build_report(
            db.conn,
            found,
            horizon_days=horizon_days,
            art49_max_months=art49_max_months,
            art49_max_per_month=art49_max_per_month,
        )
        where, params = found.where()
        if entry is not None:
            record = art30_2_record(db.conn, settings.record, entry, where, params)
            return ReportResult(report=report, client=client, client_record=record)
        own_where, own_params = scoped(where, params, None) if settings.clients else (where, params)
        own = art30_record(
            db.conn,
            settings.record,
            settings.transfer,
            own_where,
            own_params,
            snapengage_days=settings.snapengage.retention_days,
        )
        if settings.clients:
            own["clients"] = client_summary(db.conn, settings.clients, where, params)
        return ReportResult(report=report, record=own)
