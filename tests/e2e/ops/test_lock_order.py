"""A command queued behind a restore writes into the restored ledger, never the replaced one.

The real CLI in a subprocess, queued with ``--wait`` while this test process holds the writer
lock and plays `ledger restore`: once the command says it is waiting, the live file is moved
aside (as ``.replaced-…``, with its -wal/-shm) and a backup copied into its place, then the
lock is released. A command that had opened the database before queueing for the lock kept
its connection to the moved file and wrote there ("hold added (ledger seq 303)" in the
replaced file while the live ledger said "no active holds"): issue 23, item 7.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapzen.commands.copies import backup_ledger
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.lock import writer_lock
from tests.e2e.cli_server import run_cli
from tests.e2e.conftest import cli_env, init_ledger
from tests.e2e.ops.queued import Queued
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e

BOUND = 60.0  # a hung CLI fails the test instead of hanging the suite; nothing is timed


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=0, seed=1, days=1)) as sb:
        yield sb


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    # info: the `writer_lock_waiting` line says it has queued
    env = cli_env(sandbox, tmp_path / "snapzen.db", SNAPZEN_LOG__LEVEL="info")
    init_ledger(env)
    return env


def snapzen(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A command run to completion (forked from the e2e CLI server, as a fresh process)."""
    return run_cli(args, env, BOUND)


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def chain_rows(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT event FROM events ORDER BY seq")]
    finally:
        conn.close()


def swap_in(live: Path, backup: Path) -> Path:
    """What `ledger restore` does under its lock: the live file set moved aside, the backup
    copied into place."""
    aside = live.with_name(live.name + ".replaced-test")
    for suffix in ("", "-wal", "-shm"):
        current = Path(f"{live}{suffix}")
        if current.exists():
            current.rename(Path(f"{aside}{suffix}"))
    backup_ledger(backup, live)
    return aside


def queued_behind_a_restore(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[
    subprocess.CompletedProcess[str], Path
]:  # fmt: skip
    """Run ``snapzen ARGS --wait`` while a stand-in restore holds the lock; swap the file
    once the command says it is waiting; return how it ended and the replaced file."""
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    backup = tmp_path / "backup.db"
    backup_ledger(live, backup)
    with writer_lock(live):
        queued = Queued(env, [*args, "--wait"], BOUND)
        queued.until_waiting()
        try:
            aside = swap_in(live, backup)
        except BaseException:
            queued.kill()
            raise
    done = queued.finish()
    return done, aside


def test_hold_queued_behind_a_restore_lands_in_the_live_ledger(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    before = chain_rows(live)
    done, aside = queued_behind_a_restore(
        env, tmp_path, "ledger", "hold", "add", "--case", "c-77", "--reason", "litigation"
    )
    assert done.returncode == 0, done.stderr
    assert "hold added" in done.stdout
    assert chain_rows(aside) == before  # nothing written into the file moved aside
    assert chain_rows(live)[-1] == "hold_added"
    listed = snapzen(env, "ledger", "hold", "list", "--json")
    assert [h["target"] for h in json.loads(listed.stdout)] == ["case:c-77"]


def test_erasure_queued_behind_a_restore_is_in_the_live_ledger_with_its_request(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    before = chain_rows(live)
    done, aside = queued_behind_a_restore(
        env, tmp_path, "ledger", "erase", "--email", "gone@example.com"
    )
    assert done.returncode == 0, done.stderr
    assert "journalled" in done.stdout
    assert chain_rows(aside) == before
    listed = snapzen(env, "ledger", "requests", "--json")
    requests = json.loads(listed.stdout)
    assert [(r["kind"], r["outcome"]) for r in requests] == [("erasure", "nothing_found")]


def test_access_pack_queued_behind_a_restore_is_recorded_in_the_live_ledger(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    before = chain_rows(live)
    env = {**env, **RECORD_ENV}  # an access pack needs the [record] information
    done, aside = queued_behind_a_restore(
        env, tmp_path, "ledger", "access", "--case", "c-5", "--out", str(tmp_path / "pack")
    )
    assert done.returncode == 0, done.stderr
    assert chain_rows(aside) == before
    listed = snapzen(env, "ledger", "requests", "--json")
    assert [r["kind"] for r in json.loads(listed.stdout)] == ["access"]


@pytest.mark.parametrize("command", [["sync"], ["retention", "sweep"]])
def test_a_pass_queued_behind_a_restore_records_its_run_in_the_live_ledger(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    before = dump(live)
    done, aside = queued_behind_a_restore(env, tmp_path, *command)
    assert done.returncode == 0, done.stderr
    assert dump(aside) == before  # the replaced file is as the restore found it
    conn = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    try:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM runs")]
    finally:
        conn.close()
    assert kinds == ["sync" if command == ["sync"] else "retention"]
