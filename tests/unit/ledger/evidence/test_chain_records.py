"""Chain version 3 (schema 8): rows store the record their hash covers, the columns are
generated from it, and every ledger written before still verifies after the migration."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from snapzen.ledger.evidence import verify
from snapzen.ledger.evidence.chain import V3_HASHED_SQL, append_events, row_digest
from snapzen.ledger.evidence.events import RECORD_COLUMNS
from snapzen.ledger.evidence.events_table import has_records
from snapzen.ledger.evidence.verify import PARALLEL_MIN_ROWS, verify_chain
from snapzen.ledger.store.db import open_db, transaction
from tests.ledger_fixtures import Tamper

# Written by the code before schema 8 (commit cdb41f1): tests/fixtures/ledger_v1.db opened
# (migrated to schema 7), two decisions appended with its append_event (a transfer with
# non-ASCII details, a withheld case), and the cases rows the chain names. Six version-1 rows
# and two version-2 rows.
FIXTURE_V7 = Path(__file__).resolve().parents[3] / "fixtures" / "ledger_v7.db"
SELECT_ALL = (
    f"SELECT seq, {', '.join(RECORD_COLUMNS)}, prev_hash, hash, chain_version FROM events "
    "ORDER BY seq"
)


def problem_of(path: Path) -> verify.Problem | None:
    conn = open_db(path, read_only=True).conn
    try:
        return verify.verify_chain(conn).first_problem
    finally:
        conn.close()


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V7, path)
    return path


def test_a_schema_7_ledger_verifies_read_only_then_migrates_with_the_same_values(
    old_ledger: Path,
) -> None:
    reader = open_db(old_ledger, read_only=True)  # a backup checked before it is restored
    assert not has_records(reader.conn)
    before = verify.verify_chain(reader.conn)
    rows_before = reader.execute(SELECT_ALL).fetchall()
    reader.conn.close()
    assert (before.ok, before.rows) == (True, 8)

    db = open_db(old_ledger)  # migrates to schema 8, then 9
    assert has_records(db.conn)
    assert db.execute(SELECT_ALL).fetchall() == rows_before  # every value reads the same
    after = verify.verify_chain(db.conn)
    assert (after.ok, after.rows, after.head_hash) == (True, 8, before.head_hash)
    with transaction(db) as conn:
        row = append_events(conn, [{"event": "expired", "case_id": "c7", "recorded_at": "x"}])[0]
    assert row["chain_version"] == 3
    result = verify.verify_chain(db.conn)
    assert (result.ok, result.rows) == (True, 9)
    db.conn.close()


@pytest.mark.parametrize("seq", [3, 7])  # a version-1 row, a version-2 row
def test_a_row_edited_before_the_migration_still_fails_after_it(old_ledger: Path, seq: int) -> None:
    with sqlite3.connect(old_ledger) as conn:  # schema 7: the table was `transfers`
        conn.execute("DROP TRIGGER transfers_no_update")
        conn.execute("UPDATE transfers SET origin_country = 'US' WHERE seq = ?", (seq,))
    open_db(old_ledger).conn.close()  # migrates: the record is built from the edited row
    problem = problem_of(old_ledger)
    assert problem is not None and (problem.seq, problem.kind) == (seq, "edited")


def test_a_legacy_row_relabelled_to_another_version_is_caught(old_ledger: Path) -> None:
    open_db(old_ledger).conn.close()
    with sqlite3.connect(old_ledger) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        # Versions 1 and 2 hash the same way; only the record says which one a row was.
        conn.execute("UPDATE events SET chain_version = NULL WHERE seq = 7")
    problem = problem_of(old_ledger)
    assert problem is not None and (problem.seq, problem.kind) == (7, "edited")


def test_columns_cannot_be_edited_apart_from_the_record(ledger_path: Path) -> None:
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        with pytest.raises(sqlite3.OperationalError, match="generated column"):
            conn.execute("UPDATE events SET legal_basis = 'art45' WHERE seq = 5")


def test_a_table_redefined_with_plain_columns_is_reported(
    ledger_path: Path, tamper: Tamper
) -> None:
    columns = ", ".join(("seq", *RECORD_COLUMNS, "prev_hash", "hash", "chain_version", "record"))
    tamper(
        f"CREATE TABLE plain AS SELECT {columns} FROM events",
        "DROP VIEW transfers",
        "DROP TABLE events",
        "ALTER TABLE plain RENAME TO events",
        "UPDATE events SET legal_basis = 'art45' WHERE seq = 5",  # now nothing stops it
    )
    problem = problem_of(ledger_path)
    assert problem is not None and problem.kind == "altered"
    assert "redefined" in problem.message


@pytest.mark.parametrize("parallel_min_rows", [PARALLEL_MIN_ROWS, 2])  # one pass; ranges
def test_an_old_format_row_after_new_ones_is_a_forgery(
    ledger_path: Path, tamper: Tamper, parallel_min_rows: int
) -> None:
    with sqlite3.connect(ledger_path) as conn:
        prev = conn.execute("SELECT hash FROM events WHERE seq = 10").fetchone()[0]
    record = (
        f'{{"seq":11,"event":"transfer","case_id":"forged","transferred_at":"2024-07-01",'
        f'"chain_version":2,"prev_hash":"{prev}"}}'
    )
    tamper(
        (
            "INSERT INTO events (seq, prev_hash, hash, chain_version, record) "
            "VALUES (11, ?, ?, 2, ?)",
            (prev, row_digest(11, prev, 2, record), record),
        )
    )
    reader = open_db(ledger_path, read_only=True)
    result = verify_chain(reader.conn, parallel_min_rows=parallel_min_rows)
    reader.conn.close()
    problem = result.first_problem
    assert problem is not None and (problem.seq, problem.kind) == (11, "inserted")


def test_every_hash_is_recomputable_with_sql_and_sha256_alone(ledger_path: Path) -> None:
    """The auditors' recipe in docs/auditing.md: the sqlite3 shell builds the bytes."""
    with sqlite3.connect(ledger_path) as conn:
        rows = conn.execute(f"SELECT {V3_HASHED_SQL}, hash FROM events ORDER BY seq")
        for hashed, stored in rows:
            assert hashlib.sha256(hashed).hexdigest() == stored


def test_a_migrated_ledger_is_checked_in_parallel_ranges_like_the_single_pass(
    old_ledger: Path,
) -> None:
    """Upgraded ledgers are mostly older rows: the range processes take them too."""

    db = open_db(old_ledger)
    with transaction(db) as conn:
        for i in range(12):
            append_events(conn, [{"event": "expired", "case_id": f"c{i}", "recorded_at": "x"}])
    db.conn.close()
    reader = open_db(old_ledger, read_only=True)
    whole = verify.walk_chain(reader.conn)
    split = verify.verify_chain(reader.conn, parallel_min_rows=2)
    reader.conn.close()
    assert whole.ok and (split.ok, split.rows, split.head_hash) == (True, 20, whole.head_hash)


def test_a_trigger_or_index_planted_on_the_table_is_reported(
    ledger_path: Path, tamper: Tamper
) -> None:
    tamper(
        "CREATE TRIGGER events_keep BEFORE INSERT ON events "
        "WHEN json_extract(NEW.record, '$.event') = 'erased' BEGIN SELECT RAISE(IGNORE); END"
    )
    problem = problem_of(ledger_path)
    assert problem is not None and problem.kind == "altered"
    assert "trigger events_keep" in problem.message
    # Dropping snapzen's own (the append-only triggers) is not an alteration by itself:
    # what they would have refused, the chain shows.
    tamper("DROP TRIGGER events_keep", "CREATE INDEX mine ON events(origin_country)")
    problem = problem_of(ledger_path)
    assert problem is not None and "index mine" in problem.message
