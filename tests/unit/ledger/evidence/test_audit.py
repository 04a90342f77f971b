"""Listing, export formats, subject lookup and the Art. 30-style report over a real ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
import sqlite_utils

from snapzen.ledger.evidence import audit
from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.store.db import transaction
from snapzen.support.errors import ConfigError
from tests.ledger_fixtures import ALICE, KEY, append, transfer_fields


def seqs(db: sqlite_utils.Database, **filters: object) -> list[int]:
    f = audit.Filters.from_cli(**filters)  # type: ignore[arg-type]
    return [row["seq"] for row in audit.iter_transfers(db.conn, f)]


def test_lists_every_row_in_chain_order(db: sqlite_utils.Database) -> None:
    rows = list(audit.iter_transfers(db.conn))
    assert [r["seq"] for r in rows] == list(range(1, 11))
    assert set(rows[0]) == set(audit.COLUMNS)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"widget": "w1"}, [1, 3, 5, 7, 9]),
        ({"country": "ie"}, [2, 5, 8]),
        ({"country": ""}, list(range(1, 11))),  # an empty --country (unset $VAR): no filter
        ({"ticket": 1005}, [5]),
        ({"basis": "art46"}, list(range(1, 11))),
        ({"since": "2024-04-01", "until": "2024-04-30"}, [3, 9]),
        ({"since": "2024-04-10", "until": "2024-04-10"}, [9]),  # a bare --until is the whole day
        ({"until": "2024-04-10T09:59:59Z", "since": "2024-04-01"}, [3]),
        ({"until": "2024-04-10T10:00:00Z", "since": "2024-04-01"}, [3, 9]),
        ({"since": "2024-04-10T12:00:00+02:00", "until": "2024-04-10"}, [9]),
        ({"event": "erased"}, []),
    ],
)
def test_filters(
    db: sqlite_utils.Database, filters: dict[str, object], expected: list[int]
) -> None:
    assert seqs(db, **filters) == expected


def test_bad_filter_values_are_usage_errors() -> None:
    with pytest.raises(ConfigError):
        audit.Filters.from_cli(basis="art6")
    with pytest.raises(ConfigError):
        audit.Filters.from_cli(since="last tuesday")


def test_csv_output(db: sqlite_utils.Database) -> None:
    out = io.StringIO()
    count = audit.write_rows(audit.iter_transfers(db.conn), out, "csv", audit.COLUMNS)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 10 and len(rows) == 10
    assert rows[4]["seq"] == "5" and rows[4]["data_categories"] == '["contact_data","chat_content"]'


def test_json_array_and_jsonl(db: sqlite_utils.Database) -> None:
    out = io.StringIO()
    audit.write_rows(audit.iter_transfers(db.conn), out, "json", audit.COLUMNS)
    parsed = json.loads(out.getvalue())
    assert [r["seq"] for r in parsed] == list(range(1, 11))
    assert parsed[0]["data_categories"] == ["contact_data", "chat_content"]  # decoded JSON
    out = io.StringIO()
    audit.write_rows(audit.iter_transfers(db.conn), out, "jsonl", audit.COLUMNS)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and json.loads(lines[9])["seq"] == 10


def test_empty_json_is_an_empty_array(db: sqlite_utils.Database) -> None:
    out = io.StringIO()
    audit.write_rows(iter(()), out, "json", audit.COLUMNS)
    assert json.loads(out.getvalue()) == []


def test_rows_are_streamed_not_materialised(db: sqlite_utils.Database) -> None:
    rows = audit.iter_transfers(db.conn)
    assert next(rows)["seq"] == 1  # a generator over the cursor, not a list


def test_subject_lookup_uses_the_hmac_reference(db: sqlite_utils.Database) -> None:
    ref = subject_ref(KEY, "  alice@EXAMPLE.com ")
    assert ref == subject_ref(KEY, ALICE)
    rows = list(audit.subject_transfers(db.conn, ref or ""))
    assert [r["seq"] for r in rows] == [3, 6, 9]
    assert {r["recipient"] for r in rows} == {"Zendesk, Inc."}
    assert "retention_until" in rows[0] and "destination_country" in rows[0]


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("subject_ref = 'x'", "events_subject"),
        ("recorded_at >= '2024-01-01' AND recorded_at < '2024-02-01'", "events_time"),
    ],
)
def test_listing_queries_use_an_index(db: sqlite_utils.Database, where: str, index: str) -> None:
    plan = " ".join(
        str(row[3])
        for row in db.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {where} ORDER BY seq"
        )
    )
    assert index in plan, plan


def add_withheld(db: sqlite_utils.Database, n: int, reason: str, day: str) -> None:
    with transaction(db) as conn:
        for i in range(n):
            conn.execute(
                """INSERT INTO cases (case_id, widget_id, day, status, outcome, reason,
                                      first_seen_at, updated_at)
                   VALUES (?, 'w1', ?, 'withheld', 'withheld', ?, ?, ?)""",
                (f"withheld-{reason}-{day}-{i}", day, reason, day, day),
            )


def test_report_summaries(db: sqlite_utils.Database) -> None:
    add_withheld(db, 3, "no_consent", "2024-03-02")
    add_withheld(db, 1, "no_basis_for_widget", "2024-03-05")
    add_withheld(db, 2, "no_consent", "2023-12-30")  # outside the window below
    append(db, [transfer_fields(11, event="erased", ticket_id=1001, legal_basis=None)])
    report = audit.build_report(
        db.conn,
        audit.Filters.from_cli(since="2024-01-01", until="2024-12-31"),
        today=date(2026, 1, 15),
    )
    assert report.transfers == 10
    assert report.events == {"transfer": 10, "erased": 1}
    assert [m["month"] for m in report.by_month] == [f"2024-0{m}" for m in range(1, 7)]
    assert report.by_month[1] == {"month": "2024-02", "transfers": 2, "art46": 2}
    assert report.by_destination == [
        {"recipient": "Zendesk, Inc.", "destination_country": "US", "transfers": 10}
    ]
    assert report.by_basis[0]["legal_basis"] == "art46" and report.by_basis[0]["months"] == 6
    assert {r["origin_country"]: r["transfers"] for r in report.by_origin} == {
        "FR": 4, "DE": 3, "IE": 3,
    }  # fmt: skip
    assert report.withheld == [
        {"reason": "no_consent", "cases": 3},
        {"reason": "no_basis_for_widget", "cases": 1},
    ]
    # Horizon 2026-01-15 + 90 days = 2026-04-15: Feb, Mar and Apr retention dates; ticket
    # 1001 (Feb) was erased, so it no longer counts.
    assert report.expiring_until == "2026-04-15"
    assert report.expiring_by_month == [
        {"month": "2026-02", "transfers": 1},
        {"month": "2026-03", "transfers": 2},
        {"month": "2026-04", "transfers": 2},
    ]
    assert report.expiring_total == 5
    assert report.art49 == [] and report.art49_warning() is None
    assert json.loads(json.dumps(report.to_dict()))["transfers"] == 10


def test_art49_occasional_use_is_not_flagged(db: sqlite_utils.Database) -> None:
    append(db, [transfer_fields(20 + i, legal_basis="art49_1a") for i in (0, 1)])  # 2 months
    report = audit.build_report(db.conn)
    assert [f.regular for f in report.art49] == [False]
    assert report.art49_warning() is None


def test_art49_in_many_months_is_a_warning(db: sqlite_utils.Database) -> None:
    append(db, [transfer_fields(20 + i, legal_basis="art49_1a") for i in range(3)])  # 3 months
    report = audit.build_report(db.conn)
    finding = report.art49[0]
    assert (finding.basis, finding.months, finding.regular) == ("art49_1a", 3, True)
    warning = report.art49_warning() or ""
    assert "EDPB Guidelines 2/2018" in warning and "occasional" in warning
    assert "more than 2 distinct months" in warning


def test_art49_burst_in_one_month_is_a_warning(db: sqlite_utils.Database) -> None:
    rows = [transfer_fields(6 * k, legal_basis="art49_1b") for k in range(10, 32)]  # all Jan
    append(db, rows)
    report = audit.build_report(db.conn, art49_max_per_month=20)
    finding = report.art49[0]
    assert (finding.months, finding.busiest_count, finding.regular) == (1, 22, True)
    assert audit.build_report(db.conn, art49_max_per_month=30).art49_warning() is None
