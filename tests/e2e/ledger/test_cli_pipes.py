"""Real `snapzen` processes with their stdout on a pipe (issue 24): piped output is never cut,
a reader that closes the pipe early ends the command quietly as coreutils do, and a command
asked for JSON prints JSON on stdout in every outcome, the lock held included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapzen.commands.ledger_terms import TABLE_LIMIT
from snapzen.ledger.store.db import open_db
from snapzen.support.lock import writer_lock
from tests.ledger_fixtures import KEY_TEXT, append, transfer_fields

# Real CLI processes on real pipes (not in make test-fast).
pytestmark = pytest.mark.e2e

ROWS = TABLE_LIMIT + 503  # past the terminal cap, and more than a pipe buffer holds


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipes") / "ledger.db"
    db = open_db(path, create=True)
    append(db, (transfer_fields(i) for i in range(1, ROWS + 1)))
    db.conn.close()
    return path


def _env(ledger: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(
        SNAPZEN_LEDGER__PATH=str(ledger),
        SNAPZEN_LEDGER__KEY=KEY_TEXT,
        SNAPZEN_SECRETS_DIR=str(ledger.parent / "no-secrets"),
        SNAPZEN_LOG__LEVEL="warning",
        SNAPZEN_TRANSFER__CONTROLLER_COUNTRY="US",
    )
    return env


def _snapzen(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapzen", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_piped_list_gives_every_row(big_ledger: Path) -> None:
    done = _snapzen(_env(big_ledger), "ledger", "list")  # `snapzen ledger list | wc -l`
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 + ROWS  # the header, then one line per row
    assert lines[-1].split()[0] == str(ROWS) and "first" not in done.stdout + done.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "jsonl"])
def test_a_reader_that_stops_early_ends_the_command_quietly(big_ledger: Path, fmt: str) -> None:
    # `snapzen ledger list | head -1`: head reads a line and exits, closing the pipe.
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapzen", "ledger", "list", "--format", fmt],
        env=_env(big_ledger),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == ""  # no traceback, no "error" line
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell shows for coreutils


def test_sync_as_json_says_the_lock_is_held_in_json(big_ledger: Path, tmp_path: Path) -> None:
    env = _env(big_ledger)
    env.update(
        SNAPZEN_SNAPENGAGE__ORG_ID="org",
        SNAPZEN_SNAPENGAGE__API_TOKEN="t",
        SNAPZEN_SNAPENGAGE__WIDGETS="w1",
        SNAPZEN_ZENDESK__BASE_URL="https://example.zendesk.com",
        SNAPZEN_ZENDESK__EMAIL="ops@example.com",
        SNAPZEN_ZENDESK__API_TOKEN="t",
    )
    with writer_lock(big_ledger):  # another run holds the lock
        done = _snapzen(env, "sync", "--format", "json")
        table = _snapzen(env, "sync")
    assert done.returncode == 0 and "holds the lock" in done.stderr
    body = json.loads(done.stdout)
    assert body["outcome"] == "skipped" and body["exit_code"] == 0
    assert "holds the lock" in body["message"]
    assert table.returncode == 0 and table.stdout == ""  # the table format prints nothing


def test_a_json_command_that_fails_prints_json(big_ledger: Path, tmp_path: Path) -> None:
    env = _env(big_ledger)
    env["SNAPZEN_LEDGER__PATH"] = str(tmp_path / "missing.db")
    done = _snapzen(env, "status", "--format", "json")
    assert done.returncode == 2 and "no ledger" in done.stderr
    body = json.loads(done.stdout)
    assert body["outcome"] == "error" and body["exit_code"] == 2
    assert "no ledger" in body["message"]
