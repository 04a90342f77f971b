"""Issue 23 with the real CLI against the sandbox: erasures and data-subject requests survive
the loss of the ledger and of its journal, an edited journal is refused naming its line, and
verify names deleted evidence rows and journal lines a checkpoint signed."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli_env, snapzen, verify_cli
from tests.e2e.people import requests_json, synced_person
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e


def _checkpoint(env: dict[str, str], tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A signed checkpoint kept "off the machine", and the public key to check it."""
    key, public = tmp_path / "operator.pem", tmp_path / "operator.pub.pem"
    if not key.exists():
        assert snapzen(env, "ledger", "keygen", str(key), str(public)).returncode == 0
    point = tmp_path / "off-machine" / name
    done = snapzen(env, "ledger", "checkpoint", str(point), "--signing-key", str(key))
    assert done.returncode == 0, done.stdout + done.stderr
    return point, public


def _lose(ledger: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".erasures.jsonl"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)


def _rows(ledger: Path) -> tuple[int, int]:
    with sqlite3.connect(ledger) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM erased_subjects)"
        ).fetchone()


def _person_cases(sb: Any, email: str) -> set[str]:
    return {c["id"] for c in sb.app.dataset.cases if c.get("requested_by") == email}


def test_erase_lose_ledger_and_journal_adopt_with_the_copy_sends_nothing_again(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=8)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    email, _case, tickets = synced_person(sb, ledger)
    erased = snapzen(env, "ledger", "erase", "--email", email, "--received", "2026-11-30")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    journal = Path(f"{ledger}.erasures.jsonl")
    assert (journal.stat().st_mode & 0o777) == 0o600 and email not in journal.read_text()
    point, _public = _checkpoint(env, tmp_path, "cp.json")
    copy = point.with_name("cp.json.erasures.jsonl")
    assert copy.read_text() == journal.read_text()

    _lose(ledger)  # the volume is gone: ledger and journal with it
    refused = snapzen(env, "init", "--adopt")
    assert refused.returncode == 2 and "--erasure-journal" in refused.stderr
    assert not ledger.exists()
    adopted = snapzen(env, "init", "--adopt", "--erasure-journal", str(copy))
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "1 erasure(s) re-applied" in adopted.stdout, adopted.stdout

    before = {t["id"] for t in sb.tickets()}
    synced = snapzen(env, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    new = [t for t in sb.tickets() if t["id"] not in before]
    person = _person_cases(sb, email)
    assert person and not [t for t in new if t["external_id"].removeprefix("snapengage:") in person]
    assert all(t["deleted"] for t in sb.tickets() if t["id"] in tickets)
    [request] = requests_json(env)  # the erasure request came back with its dates
    assert request["kind"] == "erasure" and request["received_on"] == "2026-11-30"
    assert request["deadline"] == "2026-12-30" and request["status"] == "closed"
    assert verify_cli(env).returncode == 0
    # The new ledger's own journal has the erasure: a second loss is covered too.
    assert journal.exists() and "erasure" in journal.read_text()


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (lambda lines: lines[1:], 1),  # the first line deleted
        (lambda lines: [lines[1], lines[0], *lines[2:]], 1),  # reordered
        ("forge", 1),  # the first line's person changed, its plain hash recomputed
    ],
    ids=["deleted", "reordered", "forged"],
)
def test_an_edited_journal_is_refused_naming_the_line(
    make_sandbox: Any, tmp_path: Path, edit: Any, line: int
) -> None:
    sb = make_sandbox(chats=20, seed=9)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    email, _case, _tickets = synced_person(sb, ledger)
    assert snapzen(env, "ledger", "erase", "--email", email).returncode == 0
    journal = Path(f"{ledger}.erasures.jsonl")
    lines = journal.read_text().splitlines()
    # The erasure, then its request event and its two Art. 19 notices (Zendesk, SnapEngage).
    assert len(lines) == 4
    if edit == "forge":
        data = json.loads(lines[0])
        data["entry"]["subject_ref"] = "0" * 64
        body = json.dumps(data["entry"], sort_keys=True, separators=(",", ":")).encode()
        lines[0] = json.dumps({"entry": data["entry"], "sha256": hashlib.sha256(body).hexdigest()})
    else:
        lines = edit(lines)
    journal.write_text("\n".join(lines) + "\n")
    before = _rows(ledger)

    for args in (["ledger", "reapply-erasures"], ["ledger", "restore", str(backup)]):
        done = snapzen(env, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"line {line}:" in done.stderr, done.stderr
        assert "applied" not in done.stdout
    assert _rows(ledger) == before and not list(tmp_path.glob("ledger.db.replaced-*"))


def test_requests_survive_a_restore_and_verify_names_deleted_evidence(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=5)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, **RECORD_ENV)  # access needs [record]
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    email, _case, _tickets = synced_person(sb, ledger)
    access = snapzen(env, "ledger", "access", "--email", email, "--out", str(tmp_path / "pack"),
                     "--received", "2026-11-02")  # fmt: skip
    assert access.returncode == 0, access.stdout + access.stderr
    erased = snapzen(env, "ledger", "erase", "--email", email, "--received", "2026-11-03")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    keep = ("request_id", "kind", "received_on", "deadline", "status", "outcome")
    made = sorted(({k: r[k] for k in keep} for r in requests_json(env)), key=lambda r: r["kind"])
    assert [r["kind"] for r in made] == ["access", "erasure"]

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    after = sorted(({k: r[k] for k in keep} for r in requests_json(env)), key=lambda r: r["kind"])
    assert after == made
    assert after[0]["received_on"] == "2026-11-02" and after[1]["deadline"] == "2026-12-03"
    assert verify_cli(env).returncode == 0

    point, public = _checkpoint(env, tmp_path, "after.json")
    checked = ["ledger", "verify", "--checkpoint", str(point), "--public-key", str(public)]
    assert snapzen(env, *checked).returncode == 0
    journal = Path(f"{ledger}.erasures.jsonl")
    kept = journal.read_text()
    journal.write_text("".join(kept.splitlines(keepends=True)[:-1]))  # its newest line gone
    cut = snapzen(env, *checked)
    assert cut.returncode == 1 and "erasure journal" in cut.stderr, cut.stderr
    journal.write_text(kept)
    with sqlite3.connect(ledger) as conn:
        conn.execute("DELETE FROM erased_subjects")
        conn.execute("DELETE FROM ledger_meta WHERE name = 'key_fingerprint'")
    tampered = snapzen(env, *checked)
    assert tampered.returncode == 1
    assert "erased_subjects:" in tampered.stderr and "ledger_meta:" in tampered.stderr
    shutil.rmtree(tmp_path / "pack")  # the pack holds personal data
