"""Run rows and run ids: one scheme, one module (snapzen.ledger.store.runs)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlite_utils
from structlog.testing import capture_logs

from snapzen.commands.run import Run, recorded_run
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.store import runs
from snapzen.ledger.store.runs import read_run
from snapzen.support import clock
from snapzen.support.errors import ConfigError


def test_run_ids_name_their_kind_and_do_not_repeat() -> None:
    ids = {runs.new_run_id("erase") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"erase-[0-9a-f]{12}", run_id) for run_id in ids)


@pytest.mark.parametrize("kind", ["", "Sync", "sync now", "erase-", "x" * 33, "1sync"])
def test_a_kind_that_would_garble_the_id_is_refused(kind: str) -> None:
    with pytest.raises(ValueError):
        runs.new_run_id(kind)


def test_a_one_shot_run_is_recorded_finished_and_chained(db: sqlite_utils.Database) -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with recorded_run(db, "dismiss", "dpo", now=clock.reader(moment)) as run:
        run.details["cases"] = 1
    at = clock.format(moment)
    row = read_run(db.conn, run.run_id)
    assert row is not None
    assert (row["kind"], row["started_at"], row["finished_at"]) == ("dismiss", at, at)
    assert (row["outcome"], row["exit_code"], json.loads(row["details"])) == ("ok", 0, {"cases": 1})
    chained = db.execute(
        "SELECT event, recorded_at FROM events WHERE run_id = ?", (run.run_id,)
    ).fetchall()
    assert chained == [("run", "2026-03-01T12:00:00Z")]
    assert verify.verify_ledger(db.conn).ok


def _finished(db: sqlite_utils.Database, run_id: str) -> tuple[str, int, str | None]:
    row = read_run(db.conn, run_id)
    assert row is not None and row["finished_at"]
    return row["outcome"], row["exit_code"], row["error"]


def test_a_run_that_raises_records_why_and_the_exit_code_then_raises(
    db: sqlite_utils.Database,
) -> None:
    """What ops and auditors read after a failed command: 'aborted', the code the process
    exits with, the error on one line without the email address an API echoed back."""
    started: list[Run] = []
    with pytest.raises(ConfigError), recorded_run(db, "sync", "cron") as run:
        started.append(run)
        assert _running(db, run.run_id)  # the row is there while the body runs
        raise ConfigError("zendesk said:\n  no such user alice@example.com")
    outcome, exit_code, error = _finished(db, started[0].run_id)
    assert (outcome, exit_code) == ("aborted", 2)
    assert error is not None and "\n" not in error and "alice" not in error
    assert error.startswith("ConfigError: zendesk said: no such user")


def test_ctrl_c_records_an_interrupted_run(db: sqlite_utils.Database) -> None:
    started: list[Run] = []
    with pytest.raises(KeyboardInterrupt), recorded_run(db, "retention", "cron") as run:
        started.append(run)
        run.counts = lambda: {"fetched": 7}
        raise KeyboardInterrupt
    assert _finished(db, started[0].run_id) == ("interrupted", 1, "interrupted")
    fetched = db.execute("SELECT fetched FROM runs WHERE run_id = ?", (started[0].run_id,))
    assert fetched.fetchone() == (7,)


def test_every_run_end_is_logged_with_the_run_it_ends(db: sqlite_utils.Database) -> None:
    """docs/operations.md: `run_id` and `run_kind` on every line within a run, so an erase's
    or a restore's end is told apart from a sync's (they hold no bound run of a locked_run)."""
    started: list[Run] = []
    with capture_logs() as logs:
        with recorded_run(db, "erase", "dpo") as run:
            started.append(run)
            run.counts = lambda: {"fetched": 2}
        with pytest.raises(ConfigError), recorded_run(db, "restore", "cli") as run:
            started.append(run)
            raise ConfigError("no backup")
    ends = [e for e in logs if e["event"] in ("run_finished", "run_aborted")]
    assert [(e["event"], e.get("run_kind"), e.get("run_id"), e["outcome"]) for e in ends] == [
        ("run_finished", "erase", started[0].run_id, "ok"),
        ("run_aborted", "restore", started[1].run_id, "aborted"),
    ]
    assert ends[0]["fetched"] == 2 and ends[1]["error"] == "ConfigError: no backup"


def test_a_run_that_returns_records_its_exit_code(db: sqlite_utils.Database) -> None:
    with recorded_run(db, "backfill", "cli") as partial:
        partial.exit_code = 3
    with recorded_run(db, "sync", "cli") as stopped:
        stopped.exit_code, stopped.interrupted = 1, True
    assert _finished(db, partial.run_id) == ("partial", 3, None)
    assert _finished(db, stopped.run_id) == ("interrupted", 1, None)


def test_a_lazy_run_that_never_began_records_nothing(db: sqlite_utils.Database) -> None:
    before = db.execute("SELECT COUNT(*) FROM runs").fetchone()
    with recorded_run(db, "erase", "dpo", lazy=True):
        pass
    with pytest.raises(RuntimeError), recorded_run(db, "erase", "dpo", lazy=True):
        raise RuntimeError("before anything changed")
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == before
    with recorded_run(db, "erase", "dpo", lazy=True) as run:
        run.begin()
    assert _finished(db, run.run_id) == ("ok", 0, None)


def _running(db: sqlite_utils.Database, run_id: str) -> bool:
    row = read_run(db.conn, run_id)
    return row is not None and row["outcome"] == "running"


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
