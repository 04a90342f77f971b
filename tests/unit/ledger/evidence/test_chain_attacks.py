"""Attacks on chain version 3 made with Python's sqlite3 on the ledger file, no checkpoint.

The threat model (docs/auditing.md): truncating the newest rows or rebuilding the whole chain
with fresh hashes needs a signed checkpoint to be caught; anything else that makes the ledger
show other values, or drops, inserts or reorders rows, must be caught by plain verify.

Each test first shows that the attack works on what it targets (the ledger shows or does
something else), then asserts what catches it: plain verify, `verify --thorough` (SQLite's
integrity check, for indexes), the append itself, or the agreement check. Written as strict
xfails by a red-team review; each marker came off with its fix.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from snapzen.ledger.evidence import agreement, audit, verify
from snapzen.ledger.evidence.chain import append_events, subject_ref
from snapzen.ledger.evidence.events_table import APPEND_ONLY_TRIGGERS, EVENTS_SQL
from snapzen.ledger.store.db import LedgerError, open_db, transaction
from snapzen.support.errors import FatalError
from tests.ledger_fixtures import ALICE, KEY, Tamper, append, edit, transfer_fields

FIXTURE_V7 = Path(__file__).resolve().parents[3] / "fixtures" / "ledger_v7.db"


def _check(
    path: Path, *, thorough: bool = False
) -> tuple[verify.VerifyResult, agreement.Agreement]:
    """What `snapzen ledger verify [--thorough]` runs: the chain (after SQLite's integrity
    check with --thorough), then the working tables against it."""
    db = open_db(path, read_only=True)
    try:
        return verify.verify_ledger(db.conn, thorough=thorough), agreement.check_tables(db.conn)
    finally:
        db.conn.close()


def _set_table_sql(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'events'", (sql,)
        )
        conn.commit()


def _stale_index(path: Path, index: str, column: str, seq: int, value_sql: str) -> None:
    """Rebuild ``index`` while the table's SQL says row ``seq``'s ``column`` is
    ``value_sql``, then put EVENTS_SQL back. Virtual columns are not stored, so the rows
    are untouched: records, hashes and the table's SQL are all as verify expects, and only
    the index lies. Queries that use it (a filter, or a covering read) believe it."""
    original = f"json_extract(record, '$.{column}')"
    forged = EVENTS_SQL.replace(
        original, f"CASE WHEN seq = {seq} THEN {value_sql} ELSE {original} END"
    )
    assert forged != EVENTS_SQL
    _set_table_sql(path, forged)
    with closing(sqlite3.connect(path)) as conn:  # a new connection reads the forged SQL
        conn.execute(f"REINDEX {index}")
        conn.commit()
    _set_table_sql(path, EVENTS_SQL)


# --- undetected: indexes on the generated columns ------------------------------------------


def test_a_stale_subject_index_hiding_a_subjects_row_is_reported(ledger_path: Path) -> None:
    alice = subject_ref(KEY, ALICE)  # rows 3, 6 and 9 are Alice's
    _stale_index(ledger_path, "events_subject", "subject_ref", 3, "'someone-else'")

    db = open_db(ledger_path, read_only=True)
    try:
        answer = [row["seq"] for row in audit.subject_transfers(db.conn, alice)]
        shown = db.conn.execute("SELECT subject_ref FROM events WHERE seq = 3").fetchone()[0]
        # A chat row carries Alice's reference keyed by its month (ledger.period_keys).
        alices = {
            str(row[0])
            for row in db.conn.execute(
                "SELECT chain_ref FROM subject_periods WHERE lookup_ref = ?", (alice,)
            )
        }
        plain = verify.verify_ledger(db.conn)
        result = verify.verify_ledger(db.conn, thorough=True)
    finally:
        db.conn.close()
    assert shown in alices and answer == [6, 9]  # the attack works: row 3 left out
    assert plain.ok  # records, hashes and definitions are intact: only the index lies
    problem = result.first_problem
    assert problem is not None and problem.kind == "damaged"
    assert "events_subject" in problem.message


def test_a_stale_decision_index_cannot_vouch_for_a_redirected_ticket(ledger_path: Path) -> None:
    _stale_index(ledger_path, "events_decision", "ticket_id", 3, "9999")
    with closing(sqlite3.connect(ledger_path)) as conn:
        conn.execute("UPDATE cases SET ticket_id = 9999 WHERE case_id = 'case-3'")
        # Steer the planner to the covering index (the index set itself stays as made).
        conn.execute("ANALYZE")
        conn.execute("UPDATE sqlite_stat1 SET stat = '10 10 10' WHERE idx = 'events_event'")
        conn.commit()
        recorded = conn.execute("SELECT ticket_id FROM events WHERE seq = 3").fetchone()[0]
    plain, tables = _check(ledger_path)
    assert recorded == 1003  # the chain says ticket 1003; retention and erasure act on 9999
    assert plain.ok and not tables.problems  # the attack works against plain verify
    result, _ = _check(ledger_path, thorough=True)
    problem = result.first_problem
    assert problem is not None and problem.kind == "damaged"
    assert "events_decision" in problem.message


# --- undetected: schema objects verify does not look at ------------------------------------


def test_a_trigger_swallowing_appended_rows_is_caught(ledger_path: Path) -> None:
    with closing(sqlite3.connect(ledger_path)) as conn:
        conn.execute(
            "CREATE TRIGGER events_keep BEFORE INSERT ON events "
            "WHEN json_extract(NEW.record, '$.event') = 'erased' BEGIN SELECT RAISE(IGNORE); END"
        )
        conn.commit()
    db = open_db(ledger_path)
    refused = False
    try:
        with transaction(db) as conn:
            erased = append_events(
                conn, [{"event": "erased", "case_id": "case-3", "recorded_at": "2024-08-01"}]
            )[0]
        with transaction(db) as conn:
            append_events(
                conn, [{"event": "expired", "case_id": "case-4", "recorded_at": "2024-08-02"}]
            )
    except (sqlite3.Error, RuntimeError, ValueError, FatalError):
        refused = True
    finally:
        kept = db.conn.execute("SELECT seq, event FROM events WHERE seq > 10").fetchall()
        db.conn.close()
    if not refused:  # the attack works: the erasure was "appended" as seq 11, never stored
        assert erased["seq"] == 11 and kept == [(11, "expired")]
    result, _ = _check(ledger_path)
    assert refused or not result.ok


# --- undetected: the file that is checked is not the file at ledger.path ------------------


def _decoy_pair(tmp_path: Path, rows: int) -> Path:
    """A ledger in directory ``a%62`` with row 5 edited, and an untouched copy of it in
    ``ab``, which is where the URI ``file:.../a%62/ledger.db`` leads (%62 is 'b')."""
    (tmp_path / "a%62").mkdir()
    (tmp_path / "ab").mkdir()
    real = tmp_path / "a%62" / "ledger.db"
    db = open_db(real, create=True)
    append(db, (transfer_fields(i) for i in range(1, rows + 1)))
    db.conn.close()
    shutil.copy(real, tmp_path / "ab" / "ledger.db")
    with closing(sqlite3.connect(real)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(edit(5, legal_basis="art49_1a"))
        conn.commit()
    return real


def test_parallel_ranges_check_the_file_the_connection_has_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _decoy_pair(tmp_path, rows=30)
    monkeypatch.setattr(verify.os, "cpu_count", lambda: 2)  # ranges on any machine
    with closing(sqlite3.connect(real)) as conn:
        assert verify.walk_chain(conn).first_problem is not None
        problem = verify.verify_chain(conn, parallel_min_rows=2).first_problem
    assert problem is not None and problem.seq == 5


def test_a_read_only_open_reads_the_ledger_at_its_path(tmp_path: Path) -> None:
    real = _decoy_pair(tmp_path, rows=10)
    result, _ = _check(real)
    assert not result.ok


# --- undetected: the agreement check trusts the working table's own dates ------------------


def test_a_case_first_seen_after_the_log_began_cannot_be_backdated(ledger_path: Path) -> None:
    with closing(sqlite3.connect(ledger_path)) as conn:
        start = agreement.log_start(conn)
        assert start is not None and start < "2024-09-01"
        # A chat the sync staged after the log began, then marked synced to a ticket of the
        # attacker's choosing (it is never sent), and one marked ignored.
        conn.execute(
            """INSERT INTO cases (case_id, widget_id, status, ticket_id, synced_at,
                   first_seen_at, updated_at)
               VALUES ('case-new', 'w1', 'synced', 4242, '2020-01-01T00:00:00Z',
                   '2024-09-01T00:00:00Z', '2024-09-01T00:00:00Z')"""
        )
        conn.execute(
            """INSERT INTO cases (case_id, widget_id, status, first_seen_at, updated_at)
               VALUES ('case-new2', 'w1', 'ignored', '2024-09-01T00:00:00Z',
                   '2024-09-01T00:00:00Z')"""
        )
        conn.commit()
    _, tables = _check(ledger_path)
    # Today both are counted in tables.before_log and neither is named.
    named = {p.message.split()[1] for p in tables.problems if p.kind == "unrecorded"}
    assert named == {"case-new", "case-new2"}


# --- undetected as such: verify crashes instead of naming the row --------------------------


def test_a_table_whose_record_column_was_renamed_is_reported_as_altered(
    ledger_path: Path,
) -> None:
    _set_table_sql(ledger_path, EVENTS_SQL.replace("    record TEXT", "    Record TEXT"))
    with closing(sqlite3.connect(ledger_path)) as conn:
        problem = verify.verify_chain(conn).first_problem
    assert problem is not None and problem.kind == "altered"


def test_a_record_that_is_not_json_is_named(ledger_path: Path) -> None:
    # Relabelled to version 1 with record = "1\n" + record, the row's hash still matches:
    # only the check that a legacy record holds the row's seq/prev_hash stands in the way.
    loose = re.sub(r"json_extract\(record, '\$\.\w+'\)", "'x'", EVENTS_SQL)
    _set_table_sql(ledger_path, loose.replace(" CHECK (json_valid(record))", ""))
    with closing(sqlite3.connect(ledger_path)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(
            "UPDATE events SET chain_version = NULL, record = seq || char(10) || record "
            "WHERE seq = 1"
        )
        conn.commit()
    _set_table_sql(ledger_path, EVENTS_SQL)
    with closing(sqlite3.connect(ledger_path)) as conn:
        problem = verify.walk_chain(conn).first_problem
    assert problem is not None and problem.seq == 1


# --- caught, and worth keeping ---------------------------------------------------------


def test_a_record_stored_again_as_a_blob_reads_the_same(ledger_path: Path) -> None:
    """The same bytes as a BLOB keep their hash; the columns must then still show what the
    hash covers (SQLite 3.45+ reads a BLOB as JSONB first: this pins what it shows)."""
    with closing(sqlite3.connect(ledger_path)) as conn:
        before = conn.execute("SELECT * FROM events WHERE seq = 5").fetchone()
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET record = CAST(record AS BLOB) WHERE seq = 5")
        conn.execute(APPEND_ONLY_TRIGGERS[0])
        conn.commit()
        after = conn.execute("SELECT * FROM events WHERE seq = 5").fetchone()
        kind = conn.execute("SELECT typeof(record) FROM events WHERE seq = 5").fetchone()[0]
    assert kind == "blob"
    assert after[:-1] == before[:-1] and after[-1] == before[-1].encode()
    result, tables = _check(ledger_path)
    assert result.ok and not tables.problems


def test_a_second_transfers_definition_in_the_schema_is_refused(
    ledger_path: Path, tamper: Tamper
) -> None:
    """writable_schema: a plain-column copy of the table listed as `events` beside the
    real one. SQLite refuses the schema, so nothing can show the copy's values."""
    tamper(
        "CREATE TABLE plain AS SELECT * FROM events",
        "UPDATE plain SET legal_basis = 'art49_1a' WHERE seq = 5",
        "PRAGMA writable_schema=ON",
        "UPDATE sqlite_master SET name = 'events', tbl_name = 'events', "
        "sql = replace(sql, 'CREATE TABLE plain', 'CREATE TABLE events') "
        "WHERE name = 'plain'",
    )
    with pytest.raises(LedgerError, match="malformed"):
        open_db(ledger_path, read_only=True)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM events WHERE seq = 4",  # a version-1 row
        "UPDATE events SET chain_version = NULL WHERE seq = 8",  # version 2 relabelled 1
        "UPDATE events SET chain_version = 3 WHERE seq = 2",  # version 1 relabelled 3
        "UPDATE events SET prev_hash = (SELECT hash FROM events WHERE seq = 5) "
        "WHERE seq = 7",  # relinked past seq 6, across the version 1 -> 2 boundary
    ],
)
def test_parallel_ranges_name_the_same_legacy_row_as_the_single_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    """A migrated schema-7 ledger (versions 1, 2, 3) tampered in its legacy rows."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V7, path)
    db = open_db(path)
    with transaction(db) as conn:
        for i in range(12):
            append_events(conn, [{"event": "expired", "case_id": f"c{i}", "recorded_at": "x"}])
    db.conn.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute(statement)
        conn.commit()
    monkeypatch.setattr(verify.os, "cpu_count", lambda: 2)
    reader = open_db(path, read_only=True)
    try:
        whole = verify.walk_chain(reader.conn).first_problem
        split = verify.verify_chain(reader.conn, parallel_min_rows=2).first_problem
    finally:
        reader.conn.close()
    assert whole is not None and split == whole


def test_a_ledger_made_by_init_names_every_undecided_case_whatever_its_dates(
    tmp_path: Path,
) -> None:
    """`snapzen init` ledgers had the decision log from their first row: no case of theirs
    was decided before it, so no working-table date can excuse a missing decision."""
    from datetime import UTC, datetime

    from snapzen.ledger.store.db import create_ledger

    path = tmp_path / "init.db"
    db = create_ledger(path, KEY, datetime(2024, 1, 1, tzinfo=UTC))
    append(db, (transfer_fields(i) for i in range(1, 4)))
    db.conn.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            """INSERT INTO cases (case_id, widget_id, status, ticket_id, synced_at,
                   first_seen_at, updated_at)
               VALUES ('case-old', 'w1', 'synced', 4242, '2020-01-01T00:00:00Z',
                   '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')"""
        )
        conn.commit()
    _, tables = _check(path)
    assert [p.message for p in tables.problems] == [
        "case case-old is synced: no decision in the chain"
    ]
    assert tables.before_log == 0
