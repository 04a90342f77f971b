"""Run rows and run ids: one scheme, one module (snapzen.ledger.runs)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlite_utils

from snapzen.ledger import agreement, runs, verify
from snapzen.ledger.db import transaction
from snapzen.ledger.decisions import read_run


def test_run_ids_name_their_kind_and_do_not_repeat() -> None:
    ids = {runs.new_run_id("erase") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"erase-[0-9a-f]{12}", run_id) for run_id in ids)


@pytest.mark.parametrize("kind", ["", "Sync", "sync now", "erase-", "x" * 33, "1sync"])
def test_a_kind_that_would_garble_the_id_is_refused(kind: str) -> None:
    with pytest.raises(ValueError):
        runs.new_run_id(kind)


def test_a_one_shot_run_is_recorded_finished_and_chained(db: sqlite_utils.Database) -> None:
    run_id = runs.new_run_id("dismiss")
    at = runs.stamp(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with transaction(db) as conn:
        runs.record_finished_run(
            conn, run_id, "dismiss", "dpo", at, outcome="ok", exit_code=0, details={"cases": 1}
        )
    row = read_run(db.conn, run_id)
    assert row is not None
    assert (row["kind"], row["started_at"], row["finished_at"]) == ("dismiss", at, at)
    chained = db.execute(
        "SELECT event, recorded_at FROM events WHERE run_id = ?", (run_id,)
    ).fetchall()
    assert chained == [("run", "2026-03-01T12:00:00Z")]
    assert verify.verify_ledger(db.conn).ok


def test_a_run_row_edited_after_it_finished_is_caught(db: sqlite_utils.Database) -> None:
    run_id = runs.new_run_id("sync")
    runs.start_run(db, run_id, "sync", "cron", datetime(2026, 3, 1, tzinfo=UTC))
    runs.finish_run(
        db, run_id, datetime(2026, 3, 1, 0, 5, tzinfo=UTC), outcome="ok", exit_code=0,
        counts={"fetched": 4},
    )  # fmt: skip
    assert agreement.check_tables(db.conn).problems == []
    db.execute("UPDATE runs SET fetched = 40 WHERE run_id = ?", (run_id,))
    assert [p.kind for p in agreement.check_tables(db.conn).problems] == ["run_edited"]
