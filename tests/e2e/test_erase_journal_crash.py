"""`ledger erase` killed between its ledger commit and its rights-journal append: the next
command that writes the journal (another erase, a checkpoint) appends the missing lines once,
and a backup taken before the erasure, restored after the ledger is lost, re-applies it: the
erased person's chats are not sent again."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands.restore_swap import CRASH_VARIABLE
from snapzen.ledger.evidence.chain import subject_ref
from tests.e2e.conftest import LEDGER_KEY, cli_env, snapzen, verify_cli
from tests.e2e.people import requests_json

pytestmark = pytest.mark.e2e


def _journalled(journal: Path, request_id: str) -> Counter[tuple[str, str, str]]:
    """How many times each (line type, event, recipient) of one request is in the journal."""
    if not journal.exists():
        return Counter()
    entries = (json.loads(line) for line in journal.read_text().splitlines())
    return Counter(
        (e["type"], e["entry"].get("event", ""), e["entry"].get("recipient") or "")
        for e in entries
        if e["entry"].get("request_id") == request_id
    )


def _two_people(sb: Any, ledger: Path) -> list[str]:
    """The emails of two visitors with a synced ticket each."""
    refs = {c.get("requested_by"): c["id"] for c in sb.app.dataset.cases if c.get("requested_by")}
    with sqlite3.connect(ledger) as conn:
        synced = {
            str(r[0])
            for r in conn.execute(
                "SELECT subject_ref FROM cases WHERE status = 'synced' AND ticket_id IS NOT NULL"
            )
        }
    found = [e for e in refs if subject_ref(LEDGER_KEY.encode(), e) in synced]
    assert len(found) >= 2, found
    return found[:2]


def test_erase_killed_after_commit_is_journalled_by_the_next_writer_and_survives_a_restore(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=8)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    backup = tmp_path / "before.db"  # before any chat was sent, before the erasure
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    assert snapzen(env, "sync").returncode == 0
    first, second = _two_people(sb, ledger)
    journal = Path(f"{ledger}.erasures.jsonl")

    killed = snapzen({**env, CRASH_VARIABLE: "erase_committed"}, "ledger", "erase",
                     "--email", first, "--received", "2026-11-30")  # fmt: skip
    assert killed.returncode == 137, killed.stdout + killed.stderr
    [request] = requests_json(env)  # committed to the ledger ...
    assert not _journalled(journal, request["request_id"])  # ... but never journalled
    behind = snapzen(env, "status")  # status says so, and how to fix it
    assert behind.returncode == 3, behind.stdout + behind.stderr
    assert "rights journal" in behind.stdout and "reapply-erasures" in behind.stdout
    assert "1 erasure(s) and 3 request event(s)" in behind.stdout, behind.stdout
    metrics = snapzen(env, "status", "--format", "prometheus").stdout
    assert "\nsnapzen_rights_journal_behind 4\n" in metrics, metrics

    # (a) The next erase brings the killed run's lines in, once; later writers add nothing.
    done = snapzen(env, "ledger", "erase", "--email", second, "--received", "2026-12-01")
    assert done.returncode == 0, done.stdout + done.stderr
    caught_up = _journalled(journal, request["request_id"])
    assert caught_up[("erasure", "", "")] == 1 and caught_up[("request", "request", "")] == 1
    notices = [("request", "recipient_notice", to) for to in ("Zendesk", "SnapEngage")]
    assert [caught_up[notice] for notice in notices] == [1, 1]
    assert set(caught_up.values()) == {1}, caught_up
    assert "rights journal" not in snapzen(env, "status").stdout
    metrics = snapzen(env, "status", "--format", "prometheus").stdout
    assert "\nsnapzen_rights_journal_behind 0\n" in metrics, metrics
    key, public = tmp_path / "op.pem", tmp_path / "op.pub.pem"
    assert snapzen(env, "ledger", "keygen", str(key), str(public)).returncode == 0
    point = tmp_path / "cp.json"
    checkpoint = snapzen(env, "ledger", "checkpoint", str(point), "--signing-key", str(key))
    assert checkpoint.returncode == 0, checkpoint.stdout + checkpoint.stderr
    assert _journalled(journal, request["request_id"]) == caught_up
    assert verify_cli(env).returncode == 0
    checked = ["ledger", "verify", "--checkpoint", str(point), "--public-key", str(public)]
    assert snapzen(env, *checked).returncode == 0

    # (b) The ledger is lost (the journal beside it survives); the old backup is restored.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "2 erasure(s) re-applied" in restored.stdout, restored.stdout
    before = {t["id"] for t in sb.tickets()}
    synced = snapzen(env, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    erased_chats = {
        c["id"] for c in sb.app.dataset.cases if c.get("requested_by") in (first, second)
    }
    sent_again = [
        t for t in sb.tickets()
        if t["id"] not in before and t["external_id"].removeprefix("snapengage:") in erased_chats
    ]  # fmt: skip
    assert erased_chats and not sent_again
    with sqlite3.connect(ledger) as conn:  # fetched again, and withheld, not sent
        marks = ", ".join("?" * len(erased_chats))
        statuses = conn.execute(
            f"SELECT status FROM cases WHERE case_id IN ({marks})", sorted(erased_chats)
        ).fetchall()
    assert statuses and {s for (s,) in statuses} == {"withheld"}, statuses
    assert request["request_id"] in {r["request_id"] for r in requests_json(env)}
