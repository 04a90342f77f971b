"""The ledger's lifecycle with the real CLI against the sandbox: a ledger is created only by
`snapzen init`; a lost or restored ledger is reconciled with Zendesk so no ticket is created
twice; a ledger is bound to its key and its schema version."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.support.lock import writer_lock
from tests.e2e.conftest import cli_env, snapzen, ticket_counts, verify_cli

pytestmark = pytest.mark.e2e

_YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def _events(ledger: Path, event: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as conn:
        return conn.execute(
            "SELECT case_id, ticket_id, details FROM events WHERE event = ?", (event,)
        ).fetchall()


def _error_lines(stderr: str) -> list[str]:
    """stderr without JSON log lines (e.g. the API-token deprecation warning)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


def _no_duplicates(sb: Any) -> int:
    assert sb.state()["duplicate_external_ids"] == []
    counts = ticket_counts(sb)
    assert set(counts.values()) <= {1}
    return len(counts)


def test_lost_ledger_sync_refused_then_adopt_creates_no_duplicate(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=90, seed=21)
    env = cli_env(sb, tmp_path / "first.db")
    done = snapzen(env, "init")
    assert done.returncode == 0, done.stderr
    assert "created ledger" in done.stdout
    assert snapzen(env, "sync").returncode == 0
    created = _no_duplicates(sb)
    assert created > 0

    # A mistyped path / lost volume: refused, nothing created, not even the directory.
    lost = tmp_path / "elsewhere" / "snapzen.db"
    env2 = cli_env(sb, lost)
    refused = snapzen(env2, "sync")
    assert refused.returncode == 2
    lines = _error_lines(refused.stderr)
    assert len(lines) == 1 and str(lost) in lines[0] and "snapzen init" in lines[0], lines
    assert not lost.parent.exists()
    assert _no_duplicates(sb) == created

    # No erasure journal beside the new path: refused until one is given (issue 23).
    unjournalled = snapzen(env2, "init", "--adopt")
    assert unjournalled.returncode == 2 and "--erasure-journal" in unjournalled.stderr
    assert not lost.exists()
    journal = tmp_path / "first.db.erasures.jsonl"  # `init` made it, empty
    adopted = snapzen(env2, "init", "--adopt", "--erasure-journal", str(journal))
    assert adopted.returncode == 0, adopted.stderr
    assert f"adopted {created}" in adopted.stdout, adopted.stdout
    assert len(_events(lost, "adopted")) == created
    assert (lost.stat().st_mode & 0o777) == 0o600

    again = snapzen(env2, "sync")
    assert again.returncode == 0, again.stderr
    assert "created 0" in again.stdout or _no_duplicates(sb) >= created
    _no_duplicates(sb)
    assert verify_cli(env2).returncode == 0
    # Refuses to initialise over an existing ledger.
    twice = snapzen(env2, "init")
    assert twice.returncode == 2 and "already exists" in twice.stderr


def test_restore_a_backup_then_sync_creates_no_duplicate(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=90, widgets=2, seed=22)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    first_widget = sb.state()["widgets"][0]
    assert snapzen(env, "sync", "--widget", first_widget).returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    with sqlite3.connect(backup) as conn:
        head_seq, head_hash = conn.execute(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone() or (0, "0" * 64)
    assert snapzen(env, "sync").returncode == 0
    created = _no_duplicates(sb)

    with writer_lock(ledger):  # a running sync: restore must refuse, change nothing
        held = snapzen(env, "ledger", "restore", str(backup))
    assert held.returncode == 2 and "writer lock" in held.stderr, held.stderr

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert list(tmp_path.glob("ledger.db.replaced-*")), "the replaced file is kept"
    events = _events(ledger, "restored")
    assert len(events) == 1
    assert f'"backup_head_seq":{head_seq}' in events[0][2]
    assert head_hash in events[0][2]

    again = snapzen(env, "sync")
    assert again.returncode == 0, again.stderr
    assert _no_duplicates(sb) == created
    assert "created 0" in again.stdout
    assert verify_cli(env).returncode == 0


def test_wrong_key_refused_by_every_command_that_opens_the_ledger(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=20, seed=23)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    wrong = cli_env(sb, ledger, SNAPZEN_LEDGER__KEY="another-key-0123456789abcdef")
    backup = tmp_path / "b.db"
    commands = [
        ["sync"],
        ["run", "--every", "1h"],
        ["backfill", "--since", _YESTERDAY, "--until", _YESTERDAY],
        ["retry", "--all-failed"],
        ["dismiss", "--case", "x", "--reason", "test"],
        ["retention", "sweep"],
        ["status"],
        ["ledger", "verify"],
        ["ledger", "list"],
        ["ledger", "subject", "--email", "a@example.com"],
        ["ledger", "erase", "--email", "a@example.com", "--dry-run"],
        ["ledger", "restore", str(ledger)],
    ]
    with sqlite3.connect(ledger) as conn:
        before = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    for args in commands:
        done = snapzen(wrong, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "different ledger.key" in done.stderr or args[-1] == str(ledger), (args, done.stderr)
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before
    assert not backup.exists()


def test_newer_schema_is_refused_and_not_written(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=10, seed=24)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    with sqlite3.connect(ledger) as conn:
        conn.execute("PRAGMA user_version = 999")
    for args in (["sync"], ["status"], ["ledger", "verify"], ["retention", "sweep"]):
        done = snapzen(env, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "newer than this snapzen" in done.stderr and str(ledger) in done.stderr
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 999
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert sb.state()["tickets_count"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["sync"],
        ["run", "--every", "1h"],
        ["backfill", "--since", _YESTERDAY, "--until", _YESTERDAY],
        ["retry", "--all-failed"],
        ["dismiss", "--case", "x", "--reason", "test"],
        ["retention", "sweep"],
    ],
)
def test_missing_ledger_is_refused_and_nothing_created(
    make_sandbox: Any, tmp_path: Path, args: list[str]
) -> None:
    sb = make_sandbox(chats=5, seed=25)
    ledger = tmp_path / "data" / "snapzen.db"
    done = snapzen(cli_env(sb, ledger), *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = _error_lines(done.stderr)
    assert len(lines) == 1 and str(ledger) in lines[0] and "snapzen init" in lines[0], lines
    assert not ledger.parent.exists()
    assert sb.state()["tickets_count"] == 0


def test_restore_reapplies_erasures_made_after_the_backup(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from tests.e2e.people import synced_person

    sb = make_sandbox(chats=40, seed=8)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    assert snapzen(env, "sync").returncode == 0
    email, _case, tickets = synced_person(sb, ledger)
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    erased = snapzen(env, "ledger", "erase", "--email", email)
    assert erased.returncode == 0, erased.stderr

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "1 erasure(s) re-applied" in restored.stdout, restored.stdout
    erased_events = _events(ledger, "erased")
    assert sorted(e[1] for e in erased_events) == sorted(tickets)
    # The deleted tickets are not adopted back, and a sync sends nothing of the person again.
    adopted_tickets = {e[1] for e in _events(ledger, "adopted")}
    assert not adopted_tickets & set(tickets)
    before = {t["id"] for t in sb.tickets()}
    assert snapzen(env, "sync").returncode == 0
    person = {c["id"] for c in sb.app.dataset.cases if c.get("requested_by") == email}
    new = [t for t in sb.tickets() if t["id"] not in before]
    assert not [t for t in new if t["external_id"].removeprefix("snapengage:") in person]
    _no_duplicates(sb)
    assert verify_cli(env).returncode == 0


def test_a_backup_from_before_schema_8_is_checked_as_it_is_then_restored_migrated(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """A backup written by the previous release (schema 7: version-1 and -2 rows, no stored
    records): restore checks its chain read-only, then migrates the copy it puts in place."""
    sb = make_sandbox(chats=30, seed=23)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    backup = tmp_path / "old-backup.db"
    backup.write_bytes((Path(__file__).parent.parent / "fixtures" / "ledger_v7.db").read_bytes())
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(ledger) as conn:
        versions = [row[0] for row in conn.execute("SELECT chain_version FROM events")]
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 8
    assert versions[:8] == [None] * 6 + [2, 2] and set(versions[8:]) == {3}
    assert verify_cli(env).returncode == 0
    with sqlite3.connect(backup) as conn:  # the backup itself is left as it was
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
