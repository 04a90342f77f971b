"""`ledger checkpoint` reads the chain head and copies the erasure journal under the writer
lock, so the two agree: a writer appends its journal line only after its commit, and a
checkpoint taken in between signed a head holding an erasure request with a journal that did
not (issue 27 follow-up). The real CLI in a subprocess, queued with ``--wait`` while this
test process plays such a writer, halfway through."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.rights import erasure_journal, requests
from snapzen.ledger.rights.journal_file import create_empty
from snapzen.ledger.store.db import open_ledger, transaction
from snapzen.support.lock import writer_lock
from snapzen.support.settings import LedgerSettings
from tests.e2e.cli_server import run_cli
from tests.e2e.ops.queued import Queued
from tests.fakes import LEDGER_KEY, create_ledger

pytestmark = pytest.mark.e2e

BOUND = 60.0  # a hung CLI fails the test instead of hanging the suite; nothing is timed


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    live = create_ledger(tmp_path / "snapzen.db", LEDGER_KEY)
    create_empty(Path(f"{live}.erasures.jsonl"))
    key = signed.generate()
    signed.write_private_key(tmp_path / "k.pem", key)
    (tmp_path / "k.pub").write_bytes(signed.public_pem(key.public_key()))
    return {
        **base,
        "SNAPZEN_LEDGER__PATH": str(live),
        "SNAPZEN_LEDGER__KEY": LEDGER_KEY,
        "SNAPZEN_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "SNAPZEN_LOG__LEVEL": "info",  # the `writer_lock_waiting` line says it has queued
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A command run to completion (forked from the e2e CLI server, as a fresh process)."""
    return run_cli(args, env, BOUND)


def test_a_checkpoint_waits_for_the_writer_and_signs_a_head_its_journal_agrees_with(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    journal = Path(f"{live}.erasures.jsonl")
    point = tmp_path / "point.json"
    settings = LedgerSettings(path=live, key=LEDGER_KEY)
    with writer_lock(live):
        # A writer halfway (`requests open`): its request committed, its journal line not yet.
        db = open_ledger(settings)
        with transaction(db) as conn:
            details = requests.request_details("access", date(2026, 12, 1), "open", "received")
            row = requests.Recorder(conn, "test", datetime.now(UTC)).append(
                requests.EVENT, "req-1", "ref-1", details
            )
        db.conn.close()
        queued = Queued(
            env,
            ["ledger", "checkpoint", str(point), "--signing-key", str(tmp_path / "k.pem"),
             "--wait"],
            BOUND,
        )  # fmt: skip
        queued.until_waiting()
        try:
            erasure_journal.append_requests(journal, LEDGER_KEY.encode(), [row])  # done
        except BaseException:
            queued.kill()
            raise
    done = queued.finish()
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(point.read_text())
    assert body["seq"] == row["seq"]
    assert body["journal_lines"] == 1  # the line of the request its head holds
    verified = _cli(env, "ledger", "verify", "--checkpoint", str(point), "--public-key",
                    str(tmp_path / "k.pub"))  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_checkpoint_without_wait_is_not_written_while_a_writer_holds_the_lock(
    env: dict[str, str], tmp_path: Path
) -> None:
    live = Path(env["SNAPZEN_LEDGER__PATH"])
    point = tmp_path / "point.json"
    with writer_lock(live):
        done = _cli(env, "ledger", "checkpoint", str(point), "--signing-key",
                    str(tmp_path / "k.pem"))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "checkpoint NOT written" in done.stderr and "--wait" in done.stderr
    assert not point.exists()
    again = _cli(env, "ledger", "checkpoint", str(point), "--signing-key", str(tmp_path / "k.pem"))
    assert again.returncode == 0, again.stderr and point.exists()
