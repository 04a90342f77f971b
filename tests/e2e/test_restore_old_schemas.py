"""Issue 23: a backup of every schema snapzen ever wrote can be checked and restored (it is
migrated on the copy, never in place), and an old, unbound file is bound to a key by the
restore, never by a command that only reads it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from snapzen.ledger.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.e2e.conftest import cli_env, snapzen, verify_cli

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _backup_at(version: int, dest: Path) -> Path:
    """A ledger as snapzen wrote it at schema ``version``: the schema-4 fixture (written by
    that release) brought up by the released migration steps, or the schema-7 fixture."""
    if version == 7:
        shutil.copy(FIXTURES / "ledger_v7.db", dest)
        return dest
    shutil.copy(FIXTURES / "ledger_v1.db", dest)
    db = sqlite_utils.Database(str(dest))
    # The fixture holds the chain alone; the cases its rows name, as that release kept them.
    stamp = "2024-01-01T12:00:00Z"
    for n in range(1, 6):
        db.execute(
            "INSERT INTO cases (case_id, widget_id, status, ticket_id, synced_at, "
            "first_seen_at, updated_at) VALUES (?, 'w1', 'synced', ?, ?, ?, ?)",
            (f"c{n}", 100 + n, stamp, stamp, stamp),
        )
    for number in range(5, version + 1):
        MIGRATIONS[number - 1](db)
        db.execute(f"PRAGMA user_version = {number}")
    db.conn.commit()
    db.conn.close()
    return dest


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            return dict(conn.execute("SELECT name, value FROM ledger_meta"))
        except sqlite3.OperationalError:  # before schema 6: no ledger_meta table
            return {}


def _version(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.mark.parametrize("version", [4, 5, 6, 7])
def test_a_backup_of_every_old_schema_is_restored_migrated_and_bound(
    make_sandbox: Any, tmp_path: Path, version: int
) -> None:
    sb = make_sandbox(chats=10, seed=35)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    backup = _backup_at(version, tmp_path / f"schema-{version}.db")
    before = backup.read_bytes()
    assert _version(backup) == version and "key_fingerprint" not in _meta(backup)

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert _version(ledger) == SCHEMA_VERSION
    meta = _meta(ledger)
    assert meta.get("bound_by") == "restore" and "key_fingerprint" in meta
    assert verify_cli(env).returncode == 0
    assert backup.read_bytes() == before  # checked and migrated on a copy only

    # Another key cannot take the restored ledger over.
    wrong = cli_env(sb, ledger, SNAPZEN_LEDGER__KEY="another-key-0123456789abcdef")
    assert snapzen(wrong, "ledger", "verify").returncode == 2


def test_reading_an_unbound_old_ledger_never_binds_it(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=10, seed=36)
    ledger = _backup_at(7, tmp_path / "old.db")
    env = cli_env(sb, ledger)
    for args in (["status"], ["ledger", "verify"], ["ledger", "list"]):
        done = snapzen(env, *args)
        assert done.returncode in (0, 1, 3), (args, done.stderr)
        assert "key_fingerprint" not in _meta(ledger), args
