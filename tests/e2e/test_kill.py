"""SIGKILL of `snapzen sync` at seeded random moments, then reruns: exactly once, nothing lost.

Method: one undisturbed sync against a fresh sandbox is timed first. Each trial then starts a
fresh sandbox and ledger, launches `snapzen sync`, sends SIGKILL after a delay drawn by
``random.Random(SEED)`` uniformly within that measured duration, and reruns `snapzen sync` (at
most MAX_RERUNS times, waiting the recovery grace before each) until nothing is left to do.
SIGKILL cannot be caught: no `finally`, no atexit, no SQLite rollback hook runs, so whatever was
committed is all the rerun gets. The sandbox keeps running through the kill, so an import POST
that was in flight completes on the server as it would at Zendesk.

Small batches (5), a 5 ms latency per API call and 0.2 s jobs stretch the part of the run
where writes are in flight, so more of the random kills land between "marked pushing" and
"recorded synced" rather than during interpreter start-up.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    assert_exactly_once,
    cli_env,
    db_work_left,
    expected,
    init_ledger,
    now_utc,
    snapzen,
    verify_cli,
)

pytestmark = pytest.mark.e2e

SEED = 20240611
TRIALS = 10
MAX_RERUNS = 5
GRACE_SECONDS = 0.4  # > job_seconds (0.2): a job created by a killed POST finishes within it
SANDBOX: dict[str, Any] = {"chats": 60, "widgets": 2, "days": 2, "latency_ms": 5, "seed": 9}


def _env(sb: Any, ledger: Path) -> dict[str, str]:
    env = cli_env(
        sb,
        ledger,
        SNAPZEN_ZENDESK__BATCH_SIZE="5",
        SNAPZEN_ZENDESK__RECOVERY_GRACE_SECONDS=str(GRACE_SECONDS),
    )
    init_ledger(env)
    return env


def _phase(ledger: Path) -> str:
    """Where the kill landed, read from what the killed run committed."""
    import sqlite3

    if not ledger.exists():
        return "before-db"
    with sqlite3.connect(ledger) as conn:
        try:
            rows = dict(conn.execute("SELECT status, COUNT(*) FROM cases GROUP BY status"))
        except sqlite3.OperationalError:
            return "schema"
        no_job = conn.execute(
            "SELECT COUNT(*) FROM cases WHERE status='pushing' AND job_id IS NULL"
        ).fetchone()[0]
    if not rows:
        return "before-fetch"
    if rows.get("pushing"):
        return f"pushing={rows['pushing']}(no job id {no_job}), synced={rows.get('synced', 0)}"
    if rows.get("synced"):
        return f"synced={rows['synced']}, pending={rows.get('pending', 0)}"
    return f"staged={sum(rows.values())}"


def test_sigkill_at_random_moments_then_rerun(make_sandbox: Any, tmp_path: Path) -> None:
    # Measure an undisturbed run (the kill window) on its own sandbox and ledger.
    probe = make_sandbox(**SANDBOX)
    probe_env = _env(probe, tmp_path / "probe.db")
    began = time.monotonic()
    assert snapzen(probe_env, "sync").returncode == 0
    window = time.monotonic() - began
    probe.stop()

    rng = random.Random(SEED)
    outcomes: list[str] = []
    for trial in range(TRIALS):
        delay = rng.uniform(0.0, window)
        sb = make_sandbox(**SANDBOX)
        ledger = tmp_path / f"trial{trial}.db"
        env = _env(sb, ledger)
        first_start = now_utc()
        proc = subprocess.Popen(
            [sys.executable, "-m", "snapzen", "sync"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=30)
        phase = _phase(ledger) if code == -signal.SIGKILL else f"finished first (exit {code})"
        truth = sb.truth()
        reruns = 0
        for reruns in range(1, MAX_RERUNS + 1):  # noqa: B007 (reported below)
            time.sleep(GRACE_SECONDS)
            start = now_utc()
            done = snapzen(env, "sync")
            assert done.returncode in (0, 3), done.stdout + done.stderr
            if db_work_left(ledger, start) == 0:
                break
        else:
            pytest.fail(f"trial {trial}: unsettled after {MAX_RERUNS} reruns")
        assert_exactly_once(sb, ledger, expected(truth, first_start, start))
        if trial == TRIALS - 1:  # the CLI check once; the chain is recomputed in every trial
            assert verify_cli(env).returncode == 0
        outcomes.append(
            f"trial {trial}: kill at {delay:.2f}s/{window:.2f}s: {phase}; "
            f"reruns {reruns}; tickets {sb.state()['tickets_count']}, dupes 0"
        )
        sb.stop()
    print("\n" + "\n".join(outcomes))
