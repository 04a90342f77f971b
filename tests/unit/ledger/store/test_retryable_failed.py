"""Which failed cases can be sent again is one rule (case_status.RETRYABLE_FAILED): the pass
requeues them while attempts are left, `retry --all-failed` takes them all, `retry CASE`
accepts exactly them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlite_utils

from snapzen.commands.retry import _check_failed
from snapzen.ledger.store import outbox, queries
from snapzen.support.errors import ConfigError

NOW = datetime(2026, 11, 8, 12, tzinfo=UTC)
STAMP = "2026-11-01T00:00:00Z"

# case id, raw, started_at, attempts
CASES = [
    ("ok", "{}", STAMP, 1),
    ("spent", "{}", STAMP, 9),  # no attempt left: the pass leaves it, retry takes it
    ("no-raw", None, STAMP, 1),
    ("no-start", "{}", None, 1),
    ("invalid:w1:7", "{}", STAMP, 1),
]


def _failed(db: sqlite_utils.Database) -> None:
    for case_id, raw, started, attempts in CASES:
        db.execute(
            "INSERT INTO cases (case_id, widget_id, status, attempts, raw, started_at, "
            "first_seen_at, updated_at) VALUES (?, 'w1', 'failed', ?, ?, ?, ?, ?)",
            (case_id, attempts, raw, started, STAMP, STAMP),
        )
    db.conn.commit()


def test_the_pass_retry_all_and_retry_one_agree_on_what_can_be_sent_again(
    db: sqlite_utils.Database,
) -> None:
    _failed(db)
    every = queries.retryable_failed(db.conn)
    assert every == ["ok", "spent"]
    for case_id, *_ in CASES:
        if case_id in every:
            _check_failed(db.conn, [case_id], "retry")
        else:
            with pytest.raises(ConfigError, match="no usable payload"):
                _check_failed(db.conn, [case_id], "retry")
    assert outbox.requeue_failed(db, max_attempts=5, now=NOW) == 1
    pending = db.execute("SELECT case_id FROM cases WHERE status = 'pending'").fetchall()
    assert pending == [("ok",)]
