"""Real `snapzen` processes against the loopback sandbox: the writer lock between processes,
a backfill racing a sync, and `run` stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.lock import writer_lock
from tests.e2e.conftest import cli_env, init_ledger

pytestmark = pytest.mark.e2e


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=120, seed=1, days=5, job_seconds=0.05)) as sb:
        yield sb


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    env = cli_env(sandbox, tmp_path / "snapzen.db")
    init_ledger(env)
    return env


def snapzen(*args: str) -> list[str]:
    return [sys.executable, "-m", "snapzen", *args]


def ledger_rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(env["SNAPZEN_LEDGER__PATH"])
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def external_ids(sandbox: Sandbox) -> Counter[str]:
    return Counter(t["external_id"] for t in sandbox.tickets())


def test_second_process_exits_0_while_the_lock_is_held_or_waits_with_wait(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    db = Path(env["SNAPZEN_LEDGER__PATH"])
    with writer_lock(db):  # this test process plays the running sync
        done = subprocess.run(snapzen("sync"), env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0
        assert "another snapzen run holds the lock" in done.stderr
        assert ledger_rows(env, "SELECT * FROM runs") == []  # it wrote nothing, not a runs row

        waiting = subprocess.Popen(
            snapzen("sync", "--wait"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(0.5)
        assert waiting.poll() is None, "sync --wait must queue while the lock is held"
        assert sandbox.tickets() == []
    out, err = waiting.communicate(timeout=90)
    assert waiting.returncode == 0, err
    assert b"created" in out
    counts = external_ids(sandbox)
    assert counts and set(counts.values()) == {1}


def test_backfill_and_sync_processes_race_without_duplicates(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=5)).isoformat()
    until = (today - timedelta(days=1)).isoformat()
    procs = [
        subprocess.Popen(
            snapzen("backfill", "--since", since, "--until", until, "--wait", "--actor", "eng"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        subprocess.Popen(
            snapzen("sync", "--wait"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 3), err.decode()[-2000:]
    counts = external_ids(sandbox)
    assert counts and set(counts.values()) == {1}, "a ticket was created twice"
    synced = ledger_rows(env, "SELECT COUNT(*) FROM cases WHERE status='synced'")[0][0]
    assert synced == len(counts)
    kinds = {r[0] for r in ledger_rows(env, "SELECT kind FROM runs WHERE outcome != 'running'")}
    assert kinds == {"backfill", "sync"}
    actors = {r[0] for r in ledger_rows(env, "SELECT actor FROM runs WHERE kind='backfill'")}
    assert actors == {"eng"}


def test_run_passes_then_exits_0_soon_after_sigterm(sandbox: Sandbox, env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        snapzen("run", "--every", "1h", "--format", "json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Path(env["SNAPZEN_LEDGER__PATH"]).exists() and ledger_rows(
                    env, "SELECT 1 FROM runs WHERE finished_at IS NOT NULL"
                ):
                    break
            except sqlite3.OperationalError:
                pass  # the child is still creating the schema

            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            time.sleep(0.1)
        else:
            pytest.fail("the first pass did not finish within 60 s")
        assert len(ledger_rows(env, "SELECT * FROM runs")) == 1  # one pass at start, then idle
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert time.monotonic() - sent < 5
        assert b"stopped after 1 pass(es)" in err
        # --format json: one line per pass (as `sync --format json`), then the stop.
        first, last = (json.loads(line) for line in out.splitlines())
        [(run_id, created)] = ledger_rows(env, "SELECT run_id, created FROM runs")
        assert (first["run_id"], first["created"]) == (run_id, created)
        assert created > 0 and first["exit_code"] in (0, 3)
        assert last == {"stopped_after_passes": 1, "exit_code": 0}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
