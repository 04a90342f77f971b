"""Which commits are synced to disk on their own: every one, except the writes the next pass
repairs by itself when a power cut loses them (a staged page, a job id, a withheld or ignored
decision). The intent before a POST and the ledger rows are always synced."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from snapzen.ledger.store import outbox
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support.settings import Settings
from tests.fakes import staged_case

FULL, NORMAL = 2, 1  # PRAGMA synchronous values
INSERT = "INSERT INTO state (widget_id, cursor_day, updated_at) VALUES (?, NULL, 'x')"


def _synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def test_an_unsynced_transaction_commits_and_leaves_the_connection_synced(
    settings: Settings,
) -> None:
    db = open_db(settings.ledger.path)
    assert _synchronous(db.conn) == FULL
    with transaction(db, durable=False) as conn:
        assert _synchronous(conn) == NORMAL
        conn.execute(INSERT, ("w",))
    assert _synchronous(db.conn) == FULL
    with pytest.raises(ZeroDivisionError), transaction(db, durable=False) as conn:
        conn.execute(INSERT, ("v",))
        raise ZeroDivisionError
    assert _synchronous(db.conn) == FULL
    # Committed (seen by another connection), and the failed one rolled back.
    other = sqlite3.connect(settings.ledger.path)
    assert other.execute("SELECT widget_id FROM state").fetchall() == [("w",)]
    other.close()
    with transaction(db) as conn:
        assert _synchronous(conn) == FULL


def test_only_writes_the_next_pass_repairs_skip_their_own_sync(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    now = datetime.now(UTC)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)

    def synced(write: Callable[[], object]) -> bool:
        """Whether ``write`` committed with synchronous=FULL in effect (the level last set
        before its BEGIN, on this connection)."""
        statements.clear()
        write()
        begin = next(i for i, s in enumerate(statements) if s.startswith("BEGIN"))
        levels = [s for s in statements[:begin] if s.startswith("PRAGMA synchronous")]
        assert levels, "every transaction sets its level"
        return levels[-1] == "PRAGMA synchronous=FULL"

    assert not synced(lambda: outbox.stage(db, [staged_case(f"c{i}") for i in range(4)], now))
    assert not synced(
        lambda: outbox.set_terminal_many(db, [("c3", "ignored", "ignored", "offline", None)], now)
    )
    draft = {"outcome": "eligible", "legal_basis": "art49_1a", "subject_ref": None}
    drafts = {
        "c0": {**draft, "batch_index": 0, "transfer": {"legal_basis": "art49_1a"}},
        "c1": {**draft, "batch_index": 1, "transfer": None},
    }
    assert synced(lambda: outbox.mark_pushing(db, "b1", drafts, now, "r1"))
    assert not synced(lambda: outbox.set_job_id(db, "b1", "job1"))
    ticket_ids = {"c0": 10, "c1": 11}
    assert synced(lambda: outbox.record_synced(db, ticket_ids, now, run_id="r1", actor="t"))
    assert synced(lambda: outbox.mark_failed(db, {"c2": "Zendesk refused it"}, now))
    db.conn.set_trace_callback(None)

    rows = dict(db.execute("SELECT case_id, status FROM cases").fetchall())
    assert rows == {"c0": "synced", "c1": "synced", "c2": "failed", "c3": "ignored"}
    events = db.execute(
        "SELECT event FROM events WHERE event != 'ledger_bound' ORDER BY seq"
    ).fetchall()
    assert events == [("ignored",), ("transfer",), ("sent",)]  # decisions chained too


def test_a_commit_sqlite_refuses_raises_its_own_error_and_leaves_nothing_unsynced(
    settings: Settings,
) -> None:
    """A deferred constraint fails at COMMIT, which leaves SQLite's transaction open: it is
    rolled back, the constraint's error is the one raised, and the next durable write is
    synced."""
    db = open_db(settings.ledger.path)
    db.conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.conn.execute(
        "CREATE TABLE child (parent_id REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with (
        pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"),
        transaction(db, durable=False) as conn,
    ):
        conn.execute("INSERT INTO child VALUES (42)")
    assert not db.conn.in_transaction
    assert db.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    assert _synchronous(db.conn) == FULL
    with transaction(db) as conn:
        assert _synchronous(conn) == FULL
        conn.execute(INSERT, ("w",))
