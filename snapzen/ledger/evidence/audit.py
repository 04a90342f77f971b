"""Auditor queries over the ledger: filtered listing, streaming export, subject lookup.

Pure SQL over a connection; rows come out of generators that iterate the sqlite3 cursor, so
a million-row export holds one row at a time. Writers (csv/json/jsonl) take any text stream.
Summaries for the Art. 30-style report live in ``snapzen.ledger.report``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, timedelta
from typing import Any, Literal, TextIO

from snapzen.ledger.evidence.derogations import DEROGATION_BASES
from snapzen.ledger.evidence.events import RECORD_COLUMNS, Event
from snapzen.ledger.rights import period_keys
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.rows import dict_rows
from snapzen.support import clock
from snapzen.support.errors import ConfigError

# Every column of `events` an auditor reads (the event and its time first); listing and
# export show all of them.
_FIRST = ("event", "recorded_at")
COLUMNS = ("seq", *_FIRST, *(c for c in RECORD_COLUMNS if c not in _FIRST), "prev_hash", "hash")
JSON_COLUMNS = ("data_categories", "redactions", "details")
BASES = ("art45", "art46", *DEROGATION_BASES)
Format = Literal["csv", "json", "jsonl"]

# Answer to Art. 15(1)(c),(d) and 15(2): recipients, third country, safeguard, storage period.
SUBJECT_COLUMNS = (
    "seq",
    "event",
    "recorded_at",
    "recipient",
    "destination_country",
    "legal_basis",
    "mechanism_ref",
    "data_categories",
    "retention_until",
    "ticket_id",
    "case_id",
    "origin_country",
    "consent_variable",
    "consent_value",
    "consent_observed_at",
    "details",
)

# The report's queries, shared with the auditor UI's canned queries (web.CANNED_QUERIES),
# which run them over the `transfers` view under its time column, `transferred_at`.
BY_MONTH_SQL = (
    "SELECT substr({time}, 1, 7) AS month, legal_basis, count(*) AS {n} FROM {table}{where} "
    "GROUP BY month, legal_basis ORDER BY month"
)
BY_BASIS_SQL = (
    "SELECT legal_basis, mechanism_ref, count(*) AS transfers, count(DISTINCT "
    "substr({time}, 1, 7)) AS months, min({time}) AS first, max({time}) AS last "
    "FROM {table}{where} GROUP BY legal_basis, mechanism_ref ORDER BY transfers DESC"
)
# A transfer whose ticket snapzen has not deleted (erasure or expiry), `t` being the transfer.
NOT_DELETED_SQL = (
    "NOT EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.ticket_id "
    "AND e.event IN ('expired', 'erased'))"
)


def parse_bound(text: str | None, *, end: bool) -> str | None:
    """CLI date bound → an ISO string comparable with `recorded_at` (`...Z` UTC).

    A bare date means the whole day: --since D starts at D, --until D ends after D (we
    return the next day and compare with `<`). A full timestamp is used as given.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return (day + timedelta(days=1)).isoformat() if end else day.isoformat()
    try:
        moment = clock.parse(text)  # a naive timestamp is taken as UTC, like the ledger's
    except ValueError:
        raise ConfigError(f"{text!r} is not a date (YYYY-MM-DD) or ISO timestamp") from None
    stamp = clock.format(moment)
    # `--until 2024-05-01T10:00:00Z` includes that second: compare `< stamp + 1s`.
    return clock.format(moment + timedelta(seconds=1)) if end else stamp


def _test(sql: str) -> Any:
    """A filter and the SQL that applies it: None (the default) filters nothing; a value is
    bound into ``sql``, never spliced (only indexed or cheap predicates)."""
    return field(default=None, metadata={"sql": sql})


@dataclass(frozen=True)
class Filters:
    since: str | None = _test("recorded_at >= ?")  # inclusive lower bound (ISO), parse_bound
    until: str | None = _test("recorded_at < ?")  # exclusive upper bound (ISO), parse_bound
    widget: str | None = _test("widget_id = ?")
    country: str | None = _test("origin_country = ?")  # origin country of the visitor
    basis: str | None = _test("legal_basis = ?")
    ticket: int | None = _test("ticket_id = ?")
    subject_ref: str | None = _test("subject_ref = ?")
    event: str | None = _test("event = ?")

    @classmethod
    def from_cli(
        cls, *, since: str | None = None, until: str | None = None, **given: Any
    ) -> Filters:
        """The filters as the CLI's options give them: ConfigError (exit 2) for a bad date or
        --basis; a country in upper case."""
        if given.get("basis") not in (None, *BASES):
            raise ConfigError(f"--basis must be one of {', '.join(BASES)}")
        if "country" in given:  # an empty one (an unset $VAR) filters nothing
            given["country"] = given["country"].upper() if given["country"] else None
        return cls(parse_bound(since, end=False), parse_bound(until, end=True), **given)

    def where(self) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or "") over the filters given, and its parameters."""
        used = [(f.metadata["sql"], getattr(self, f.name)) for f in fields(self)]
        used = [(test, value) for test, value in used if value is not None]
        where = " WHERE " + " AND ".join(test for test, _ in used) if used else ""
        return where, [value for _, value in used]


def iter_transfers(
    conn: sqlite3.Connection, filters: Filters = Filters(), *, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Matching rows (every column of ``COLUMNS``) in chain (seq) order, one at a time."""
    where, params = filters.where()
    sql = f"SELECT {', '.join(COLUMNS)} FROM events{where} ORDER BY seq LIMIT ?"
    for values in conn.execute(sql, [*params, -1 if limit is None else limit]):
        yield dict(zip(COLUMNS, values, strict=True))


def subject_transfers(conn: sqlite3.Connection, ref: str) -> Iterator[dict[str, Any]]:
    """Every ledger row of one data subject (transfers and later erasure/expiry events)."""
    chained, params = period_keys.match(conn, ref)  # every period not forgotten
    sql = f"SELECT {', '.join(SUBJECT_COLUMNS)} FROM events WHERE {chained} ORDER BY seq"
    for values in conn.execute(sql, params):
        yield dict(zip(SUBJECT_COLUMNS, values, strict=True))


# --- writers ------------------------------------------------------------------------------


def decode_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns are stored as text; JSON outputs carry them as nested values."""
    out = dict(row)
    for column in JSON_COLUMNS:
        value = out.get(column)
        if isinstance(value, str):
            # Keep text we cannot parse rather than fail an audit export.
            with contextlib.suppress(json.JSONDecodeError):
                out[column] = json.loads(value)
    return out


# CSV cells that a spreadsheet will not run as formulas (the OWASP CSV-injection rule): ledger
# rows carry text that came from outside (case ids, consent values, error details), and a
# cell such as ``=HYPERLINK(...)`` or ``+cmd|' /C calc'!A0`` would be evaluated when an auditor
# opens the export. A text cell starting with one of these is prefixed with ``'`` (shown as
# text, the value otherwise intact); numbers are left alone, JSON outputs never touched.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` safe to put in a CSV cell."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(decode_json_columns(row), ensure_ascii=False, separators=(",", ":"))


def write_rows(
    rows: Iterable[dict[str, Any]], out: TextIO, fmt: Format, columns: Iterable[str]
) -> int:
    """Stream rows to ``out``; returns the count. The JSON array is written element by
    element rather than built in memory."""
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    if fmt == "csv":
        writer.writeheader()
    count = 0
    for count, row in enumerate(rows, start=1):
        if fmt == "csv":
            writer.writerow({key: neutralise(value) for key, value in row.items()})
        elif fmt == "jsonl":
            out.write(_dumps(row) + "\n")
        else:  # json: one element at a time
            out.write(("[\n" if count == 1 else ",\n") + _dumps(row))
    if fmt == "json":
        out.write("\n]\n" if count else "[]\n")
    return count


# --- Art. 30-style report -----------------------------------------------------------------

# Heuristics, not figures from the Guidelines: EDPB Guidelines 2/2018 read Art. 49 derogations
# restrictively, for occasional transfers "outside the regular course of action"; transfers in
# many different months, or many in one month, look like the regular course of business.
ART49_MAX_MONTHS = 2  # warn when a derogation carries transfers in 3 or more distinct months
ART49_MAX_PER_MONTH = 20  # ... or more than 20 transfers in any single month
EXPIRY_HORIZON_DAYS = 90


@dataclass(frozen=True)
class Art49Finding:
    basis: str
    transfers: int
    months: int
    busiest_month: str | None
    busiest_count: int
    regular: bool


@dataclass
class Report:
    generated_at: str
    since: str | None
    until: str | None
    head_seq: int
    transfers: int
    events: dict[str, int]
    by_month: list[dict[str, Any]]
    by_destination: list[dict[str, Any]]
    by_basis: list[dict[str, Any]]
    by_origin: list[dict[str, Any]]
    withheld: list[dict[str, Any]]
    expiring_horizon_days: int
    expiring_until: str
    expiring_total: int
    expiring_by_month: list[dict[str, Any]]
    art49: list[Art49Finding]
    art49_max_months: int
    art49_max_per_month: int

    @property
    def art49_regular(self) -> list[Art49Finding]:
        return [finding for finding in self.art49 if finding.regular]

    def art49_warning(self) -> str | None:
        regular = self.art49_regular
        if not regular:
            return None
        parts = [
            f"{f.basis}: {f.transfers} transfers in {f.months} months "
            f"(busiest {f.busiest_month}: {f.busiest_count})"
            for f in regular
        ]
        return (
            "WARNING: Art. 49 derogations carry regular, repeated transfers — "
            + "; ".join(parts)
            + ". "
            + self.art49_advice()
        )

    def art49_advice(self) -> str:
        """What to do about regular derogations, and the thresholds used: the one text of
        the JSON ``art49_warning`` and the text report's."""
        months, per_month = self.art49_max_months, self.art49_max_per_month
        return (
            "EDPB Guidelines 2/2018 read Art. 49 restrictively: derogations are for occasional "
            "transfers outside the regular course of action, not for a scheduled job. Put an "
            "Art. 45 adequacy decision or Art. 46 safeguard (e.g. SCCs, BCRs) in place. "
            "Threshold used (snapzen's heuristic, not a figure from the Guidelines): present "
            f"in more than {months} distinct month{'' if months == 1 else 's'}, or more than "
            f"{per_month} transfer{'' if per_month == 1 else 's'} in one month."
        )

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["art49_warning"] = self.art49_warning()
        return body


def build_report(
    conn: sqlite3.Connection,
    filters: Filters = Filters(),
    *,
    today: date | None = None,
    generated_at: str | None = None,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
    art49_max_months: int = ART49_MAX_MONTHS,
    art49_max_per_month: int = ART49_MAX_PER_MONTH,
) -> Report:
    """Summaries by month, destination, basis and origin over the window in ``filters``;
    withheld cases by reason over the same window; retention ending within the horizon
    (counted from ``today``, whole ledger, tickets not yet erased or expired)."""
    today = today or clock.today()
    where, params = replace(filters, event=Event.TRANSFER).where()
    on_events = {"time": "recorded_at", "table": "events", "where": where}
    month_basis = dict_rows(conn, BY_MONTH_SQL.format(n="n", **on_events), params)
    by_month: dict[str, dict[str, Any]] = {}
    for row in month_basis:
        entry = by_month.setdefault(row["month"], {"month": row["month"], "transfers": 0})
        entry["transfers"] += row["n"]
        entry[str(row["legal_basis"])] = row["n"]
    any_where, any_params = replace(filters, event=None).where()
    counted = f"SELECT event, count(*) AS n FROM events{any_where} GROUP BY event"
    expiring_until = (today + timedelta(days=horizon_days)).isoformat()
    expiring_by_month = dict_rows(
        conn,
        f"""SELECT substr(t.retention_until, 1, 7) AS month, count(*) AS transfers
           FROM events t
           WHERE t.event = ? AND t.retention_until >= ? AND t.retention_until <= ?
             AND {NOT_DELETED_SQL} GROUP BY month ORDER BY month""",
        [Event.TRANSFER, today.isoformat(), expiring_until],
    )
    return Report(
        generated_at=generated_at or clock.format(clock.now()),
        since=filters.since,
        until=filters.until,
        head_seq=int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]),
        transfers=sum(entry["transfers"] for entry in by_month.values()),
        events={str(row["event"]): int(row["n"]) for row in dict_rows(conn, counted, any_params)},
        by_month=list(by_month.values()),
        by_destination=transfers_by(conn, "recipient, destination_country", where, params),
        by_basis=dict_rows(conn, BY_BASIS_SQL.format(**on_events), params),
        by_origin=transfers_by(conn, "origin_country", where, params),
        withheld=_withheld(conn, filters),
        expiring_horizon_days=horizon_days,
        expiring_until=expiring_until,
        expiring_total=sum(int(row["transfers"]) for row in expiring_by_month),
        expiring_by_month=expiring_by_month,
        art49=_art49_findings(month_basis, art49_max_months, art49_max_per_month),
        art49_max_months=art49_max_months,
        art49_max_per_month=art49_max_per_month,
    )


def transfers_by(
    conn: sqlite3.Connection, columns: str, where: str, params: Sequence[Any]
) -> list[dict[str, Any]]:
    """Rows of ``where`` (a WHERE clause selecting transfers) counted by ``columns`` (SQL
    names, never input), most first: the report's and the Art. 30 record's figures."""
    sql = f"SELECT {columns}, count(*) AS transfers FROM events{where} GROUP BY {columns}"
    return dict_rows(conn, sql + " ORDER BY transfers DESC", params)


def _art49_findings(
    month_basis: list[dict[str, Any]], max_months: int, max_per_month: int
) -> list[Art49Finding]:
    findings = []
    for basis in DEROGATION_BASES:
        counts = {r["month"]: int(r["n"]) for r in month_basis if r["legal_basis"] == basis}
        if not counts:
            continue
        busiest = max(counts, key=lambda m: counts[m])
        findings.append(
            Art49Finding(
                basis=basis,
                transfers=sum(counts.values()),
                months=len(counts),
                busiest_month=busiest,
                busiest_count=counts[busiest],
                regular=len(counts) > max_months or counts[busiest] > max_per_month,
            )
        )
    return findings


def _withheld(conn: sqlite3.Connection, filters: Filters) -> list[dict[str, Any]]:
    """Withheld chats by reason, by the UTC day the chat started (the cases table's `day`)."""
    tests = [
        ("status = ?", CaseStatus.WITHHELD),
        ("day >= ?", filters.since[:10] if filters.since else None),
        ("day < ?", filters.until),
        ("widget_id = ?", filters.widget),
    ]
    used = [(test, value) for test, value in tests if value]
    return dict_rows(
        conn,
        "SELECT coalesce(reason, '(none)') AS reason, count(*) AS cases FROM cases "
        f"WHERE {' AND '.join(test for test, _ in used)} GROUP BY 1 ORDER BY cases DESC",
        [value for _, value in used],
    )
