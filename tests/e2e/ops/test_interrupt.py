"""A real `snapzen backfill` / `snapzen sync` process stopped by a signal (issue 24): the
process's exit code, its `runs` row, `status`, `status --check` and the metrics say the same
thing (interrupted, exit code 1), and the backfill's progress lines never go backwards and
carry the day being read and the tickets created so far."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from snapzen.sandbox import Sandbox, SandboxConfig
from tests.e2e.cli_server import run_cli
from tests.e2e.conftest import cli_env, init_ledger

pytestmark = pytest.mark.e2e

TIMEOUT = 90.0  # a hung process fails the test instead of hanging the suite


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # Small import batches and slow jobs: the run is still importing when the signal comes.
    config = SandboxConfig(chats=240, seed=5, days=6, job_seconds=0.3, long_transcripts=0)
    with Sandbox(config) as sb:
        yield sb


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    env = cli_env(
        sandbox,
        tmp_path / "snapzen.db",
        SNAPZEN_ZENDESK__BATCH_SIZE="5",
        SNAPZEN_ZENDESK__BACKFILL_MAX_JOBS_IN_FLIGHT="2",
        SNAPZEN_ZENDESK__MAX_JOBS_IN_FLIGHT="2",
        SNAPZEN_LOG__LEVEL="info",
    )
    init_ledger(env)
    return env


def snapzen(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A command run to completion (forked from the e2e CLI server, as a fresh process)."""
    return run_cli(args, env, TIMEOUT)


class Lines:
    """A child's stderr read line by line on a thread, so the test waits with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._new:
                self.lines.append(line)
                self._new.notify_all()
        with self._new:
            self.lines.append("")  # end of stream
            self._new.notify_all()

    def wait_for(self, wanted: Any, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._new:
            while True:
                while seen < len(self.lines):
                    line = self.lines[seen]
                    seen += 1
                    if line == "":
                        pytest.fail("the process ended first:\n" + "".join(self.lines)[-3000:])
                    if wanted(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("not seen in time:\n" + "".join(self.lines)[-3000:])
                self._new.wait(left)

    def close(self) -> str:
        self._thread.join(TIMEOUT)
        return "".join(self.lines)


def _progress(line: str) -> dict[str, Any] | None:
    if '"backfill_progress"' not in line:
        return None
    record: dict[str, Any] = json.loads(line)
    return record


def _last_run(env: dict[str, str], kind: str) -> tuple[str, int, int]:
    conn = sqlite3.connect(env["SNAPZEN_LEDGER__PATH"])
    try:
        row = conn.execute(
            "SELECT outcome, exit_code, created FROM runs WHERE kind = ? "
            "ORDER BY started_at DESC, rowid DESC LIMIT 1",
            (kind,),
        ).fetchone()
    finally:
        conn.close()
    return row[0], row[1], row[2]


def _everything_says_interrupted(env: dict[str, str], kind: str) -> None:
    outcome, exit_code, _ = _last_run(env, kind)
    assert (outcome, exit_code) == ("interrupted", 1)
    check = snapzen(env, "status", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "interrupted" in check.stdout and check.stdout.startswith("unhealthy")
    status = snapzen(env, "status", "--json")
    last = json.loads(status.stdout)["last_run"]
    assert (last["kind"], last["outcome"], last["exit_code"]) == (kind, "interrupted", 1)
    metrics = snapzen(env, "status", "--format", "prometheus").stdout
    assert 'snapzen_last_run_outcome{outcome="interrupted"} 1' in metrics
    assert 'snapzen_last_run_outcome{outcome="ok"} 0' in metrics
    assert "snapzen_last_run_exit_code 1\n" in metrics
    table = snapzen(env, "status").stdout
    assert "interrupted (exit code 1)" in table


def test_sigterm_to_a_backfill_is_recorded_as_interrupted_everywhere(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=5)).isoformat()
    until = (today - timedelta(days=1)).isoformat()
    command = ["backfill", "--since", since, "--until", until, "--progress-every", "0"]
    # One slice for the whole range, so the signal lands inside the pass.
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapzen", *command, "--slice", "600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = Lines(proc.stderr)  # type: ignore[arg-type]
    try:
        # Tickets are counted as they are created, long before the slice's final drain, and
        # the line names the day being read.
        first = lines.wait_for(lambda line: ((_progress(line) or {}).get("created") or 0) > 0)
        assert json.loads(first)["day"] is not None
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)
        err = lines.close()
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err[-3000:]
    assert "backfill interrupted" in err and "interrupted" in out
    progress = [p for p in map(_progress, err.splitlines()) if p is not None]
    for name in ("windows_done", "windows_recorded", "fetched", "created"):
        values = [p[name] for p in progress]
        assert values == sorted(values), f"{name} went backwards: {values}"
    days = [p["day"] for p in progress if p["day"] is not None]
    assert days == sorted(days) and days[0] == since
    assert progress[-1]["windows_done"] > 0 and progress[-1]["windows_recorded"] == 0
    _everything_says_interrupted(env, "backfill")

    # The same command again finishes the job, and then everything says so.
    again = snapzen(env, *command)
    assert again.returncode in (0, 3), again.stderr[-3000:]
    outcome, exit_code, _ = _last_run(env, "backfill")
    assert exit_code == again.returncode and outcome == ("ok" if exit_code == 0 else "partial")
    if again.returncode == 0:
        check = snapzen(env, "status", "--check")
        assert check.returncode == 0 and check.stdout.startswith("healthy"), check.stdout


def test_ctrl_c_to_a_sync_is_recorded_as_interrupted_everywhere(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapzen", "sync", "--format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = Lines(proc.stderr)  # type: ignore[arg-type]
    try:
        lines.wait_for(lambda line: '"import_submitted"' in line)
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT)
        err = lines.close()
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err[-3000:]
    assert "sync interrupted" in err
    summary = json.loads(out)
    assert summary["exit_code"] == 1 and summary["interrupted"] is True
    _, _, created = _last_run(env, "sync")
    assert summary["created"] == created
    _everything_says_interrupted(env, "sync")
