"""Schema 9 (issue 25): the chain's table says what it holds. `transfers` (every event) is
now `events`, ``transferred_at`` (any event's time) ``recorded_at``, and `transfers` is the
view of the restricted transfers. The hashed records keep their keys, so every chain written
before verifies after, and a ledger not yet migrated reads under the new names."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.ledger.evidence import verify
from snapzen.ledger.evidence.chain import append_events, row_digest
from snapzen.ledger.evidence.events_table import move_to_events
from snapzen.ledger.store.db import open_db, transaction
from snapzen.ledger.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.ledger_fixtures import Tamper

FIXTURE_V7 = Path(__file__).resolve().parents[3] / "fixtures" / "ledger_v7.db"
STORED = "SELECT seq, prev_hash, hash, chain_version, record FROM {} ORDER BY seq"


@pytest.fixture
def schema_8(tmp_path: Path) -> Path:
    """A ledger as snapzen wrote it at schema 8: the schema-7 fixture brought up by the
    released step, plus a version-3 row appended in that form (chain versions 1, 2, 3)."""
    path = tmp_path / "schema-8.db"
    shutil.copy(FIXTURE_V7, path)
    db = sqlite_utils.Database(str(path))
    MIGRATIONS[7](db)
    db.execute("PRAGMA user_version = 8")
    seq, prev = db.execute("SELECT seq, hash FROM transfers ORDER BY seq DESC").fetchone()
    record = json.dumps(
        {"event": "expired", "case_id": "c1", "transferred_at": "2026-01-02T03:04:05Z"},
        separators=(",", ":"),
    )
    db.execute(
        "INSERT INTO transfers (seq, prev_hash, hash, chain_version, record) "
        "VALUES (?, ?, ?, 3, ?)",
        (seq + 1, prev, row_digest(seq + 1, prev, 3, record), record),
    )
    db.conn.commit()
    db.conn.close()
    return path


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_a_schema_8_ledger_moves_to_events_with_every_row_byte_for_byte(schema_8: Path) -> None:
    before = _rows(schema_8, STORED.format("transfers"))
    times = _rows(schema_8, "SELECT seq, transferred_at FROM transfers ORDER BY seq")
    transfers = _rows(schema_8, "SELECT seq, case_id FROM transfers WHERE event = 'transfer'")
    assert len(before) == 9 and {row[3] for row in before} == {None, 2, 3} and transfers

    db = open_db(schema_8)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11
    assert db.execute(STORED.format("events")).fetchall() == before
    assert db.execute("SELECT seq, recorded_at FROM events ORDER BY seq").fetchall() == times
    result = verify.verify_chain(db.conn)
    assert (result.ok, result.rows, result.head_hash) == (True, 9, before[-1][2])
    # `transfers` is now the view of the restricted transfers, under their own time's name
    assert db.view_names() == ["transfers"] and "transfers" not in db.table_names()
    assert db.execute("SELECT seq, case_id FROM transfers ORDER BY seq").fetchall() == transfers
    assert "transferred_at" in db["transfers"].columns_dict
    assert "event" not in db["transfers"].columns_dict  # it holds one kind: no filter needed
    # A new row is hashed over the same record keys as before: older chains stay verifiable.
    with transaction(db) as conn:
        row = append_events(conn, [{"event": "expired", "case_id": "c2", "recorded_at": "x"}])[0]
    assert json.loads(row["record"]) == {"event": "expired", "case_id": "c2", "transferred_at": "x"}
    assert verify.verify_chain(db.conn).ok
    move_to_events(db)  # the step again (a second process racing to migrate): nothing changes
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 10
    db.conn.close()


def test_a_ledger_not_yet_migrated_reads_under_the_new_names_and_stays_untouched(
    schema_8: Path,
) -> None:
    """A backup checked before it is restored, or `status` right after an upgrade: read-only,
    never migrated in place."""
    original = schema_8.read_bytes()
    reader = open_db(schema_8, read_only=True)
    times = reader.execute("SELECT seq, recorded_at FROM events ORDER BY seq").fetchall()
    assert times == _rows(schema_8, "SELECT seq, transferred_at FROM transfers ORDER BY seq")
    result = verify.verify_chain(reader.conn)
    assert (result.ok, result.rows) == (True, 9)
    reader.conn.close()
    assert schema_8.read_bytes() == original


def test_a_transfers_view_showing_other_rows_is_reported(ledger_path: Path, tamper: Tamper) -> None:
    """Auditors read the register of transfers through the view: one redefined to show rows
    the chain does not hold, or a table put in its place, is an alteration."""
    assert verify.verify_chain(open_db(ledger_path, read_only=True).conn).ok
    tamper("DROP VIEW transfers")  # gone: no evidence lost, nothing shown
    assert verify.verify_chain(open_db(ledger_path, read_only=True).conn).ok
    tamper(
        "CREATE VIEW transfers AS SELECT seq, recorded_at AS transferred_at, case_id, "
        "'art45' AS legal_basis FROM events"
    )
    problem = verify.verify_chain(open_db(ledger_path, read_only=True).conn).first_problem
    assert problem is not None and problem.kind == "altered" and "view" in problem.message
    tamper("DROP VIEW transfers", "CREATE TABLE transfers (seq INTEGER, legal_basis TEXT)")
    problem = verify.verify_chain(open_db(ledger_path, read_only=True).conn).first_problem
    assert problem is not None and problem.kind == "altered"
