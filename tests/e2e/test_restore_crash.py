"""Issue 23: `ledger restore` killed at every step of its file swap leaves either the old or
the new ledger whole at ledger.path (WAL and SHM included), and replaced files are never
overwritten, even by two restores within one second.

The old ledger starts with a hold whose only copy is in its WAL (its writer died before any
checkpoint): the case the issue found, where a restore lost it or replayed it onto the
restored file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands.restore_swap import CRASH_VARIABLE, STEPS
from tests.e2e.conftest import LEDGER_KEY, cli_env, snapzen, verify_cli

pytestmark = pytest.mark.e2e

_HOLD_IN_WAL = """
import os, sys
from datetime import UTC, datetime
from snapzen.ledger.rights import holds
from snapzen.ledger.store.db import open_db, transaction
db = open_db(sys.argv[1], key=sys.argv[2].encode())
with transaction(db) as conn:
    now = datetime.now(UTC)
    holds.change(conn, "case:only-in-the-wal", "litigation", add=True, actor="t", now=now)
os._exit(0)  # no close, no checkpoint: the hold lives in the -wal file only
"""


def _has(ledger: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(conn.execute(sql).fetchone()[0])


def _hold(ledger: Path) -> int:
    return _has(ledger, "SELECT COUNT(*) FROM events WHERE case_id = 'only-in-the-wal'")


def _restored(ledger: Path) -> int:
    return _has(ledger, "SELECT COUNT(*) FROM events WHERE event = 'restored'")


@pytest.fixture
def ready(make_sandbox: Any, tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    sb = make_sandbox(chats=20, seed=34)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    done = subprocess.run(
        [sys.executable, "-c", _HOLD_IN_WAL, str(ledger), LEDGER_KEY], check=False, env=env
    )
    assert done.returncode == 0
    assert Path(f"{ledger}-wal").stat().st_size > 0 and _hold(ledger) == 1
    return env, ledger, backup


@pytest.mark.parametrize("step", STEPS)
def test_restore_killed_at_each_step_leaves_one_whole_ledger(
    ready: tuple[dict[str, str], Path, Path], step: str
) -> None:
    env, ledger, backup = ready
    killed = snapzen({**env, CRASH_VARIABLE: step}, "ledger", "restore", str(backup))
    assert killed.returncode == 137, killed.stdout + killed.stderr

    # Whichever ledger is at the path opens, is intact and verifies.
    assert verify_cli(env).returncode == 0
    if step == "swapped":  # the new one: the restore's event, not the later hold
        assert (_restored(ledger), _hold(ledger)) == (1, 0)
    else:  # the old one, its WAL-only hold kept
        assert (_restored(ledger), _hold(ledger)) == (0, 1)
    aside = sorted(ledger.parent.glob("ledger.db.replaced-*[!lm]"))
    for kept in aside:  # a replaced file, if made, is the old ledger whole, hold included
        assert _hold(kept) == 1

    # The next restores finish; every replaced file keeps its own name.
    for _ in range(2):  # two within one second
        again = snapzen(env, "ledger", "restore", str(backup))
        assert again.returncode == 0, again.stderr
    replaced = sorted(ledger.parent.glob("ledger.db.replaced-*[!lm]"))
    assert len(replaced) == len(aside) + 2 and set(aside) <= set(replaced)
    assert sum(_hold(p) for p in replaced) >= 1  # the hold survives in a replaced file
    assert not list(ledger.parent.glob("ledger.db.restoring*"))
    assert verify_cli(env).returncode == 0
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in replaced)
