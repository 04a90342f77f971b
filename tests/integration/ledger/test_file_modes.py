"""Every file snapzen writes is 0600 and every directory it creates 0700, whatever the umask:
000 (files would be world-writable) and 022 (an operator's usual shell: world-readable).

The ledger and its -wal/-shm, the lock, the erasure journal, exports, access packs, keys,
checkpoints, backups, the files a restore moves aside, logs, the sandbox's ready file and the
web snapshot: most through the real CLI (Typer's runner, in this process, so under its umask)
against the loopback sandbox."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import auditor_ui
from snapzen.commands.backfill_progress import log_file
from snapzen.commands.copies import backup_ledger
from snapzen.ledger.evidence import audit, web
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.store.db import open_db
from snapzen.sandbox import Sandbox, SandboxConfig, server
from snapzen.support.atomic import atomic_text, open_private_binary
from snapzen.support.lock import lock_path
from snapzen.support.settings import Settings
from tests.ledger_fixtures import KEY, KEY_TEXT


@pytest.fixture(autouse=True, params=[0o000, 0o022], ids=["umask000", "umask022"])
def open_umask(request: pytest.FixtureRequest) -> Iterator[None]:
    old = os.umask(request.param)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_is_0600_even_over_an_existing_world_readable_file(
    ledger_path: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups" / "ledger.db"
    dest.parent.mkdir()
    dest.write_text("old")
    dest.chmod(0o644)
    backup_ledger(ledger_path, dest, overwrite=True)
    assert _mode(dest) == 0o600
    assert not list(dest.parent.glob("*.partial*"))


def test_export_and_checkpoint_are_0600(db: sqlite_utils.Database, tmp_path: Path) -> None:
    export = tmp_path / "rows.csv"
    with atomic_text(export) as handle:
        audit.write_rows(audit.iter_transfers(db.conn), handle, "csv", audit.COLUMNS)
    assert _mode(export) == 0o600
    checkpoint = tmp_path / "head.json"
    signed.write(checkpoint, signed.make(db.conn, KEY))
    assert _mode(checkpoint) == 0o600


def test_web_snapshot_is_0600(ledger_path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    web.make_snapshot(ledger_path, snapshot)
    assert _mode(snapshot) == 0o600


# --- through the CLI ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # Every test's `snapzen init` reads the incremental export once (the first-pass check for
    # tickets search has not indexed yet): ~20 inits in seconds would meet Zendesk's 10 a
    # minute and wait a minute for the window. The pacing has tests of its own; here, room.
    config = SandboxConfig(chats=0, seed=1, days=1, incremental_export_rate_per_minute=100)
    with Sandbox(config) as sb:
        yield sb


@pytest.fixture
def live(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger made by `snapzen init` in directories it creates (two levels)."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "state" / "snapzen" / "snapzen.db"
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(tmp_path / "no-secrets"))
    monkeypatch.setenv("SNAPZEN_LOG__LEVEL", "warning")
    cli("init")
    return path


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _private(*paths: Path) -> None:
    assert paths
    for path in paths:
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, f"{path}: {oct(_mode(path))}"


def test_ledger_its_directories_wal_and_shm(live: Path, tmp_path: Path) -> None:
    _private(live, live.parent, live.parent.parent)
    db = open_db(live)  # a writer holds the -wal and -shm open
    try:
        db.execute("CREATE TABLE scratch (x)")
        _private(Path(f"{live}-wal"), Path(f"{live}-shm"))
    finally:
        db.conn.close()


def test_lock_file_and_a_ledger_left_world_readable(live: Path) -> None:
    live.chmod(0o644)  # by an older snapzen, or a copy by hand
    cli("ledger", "hold", "add", "--case", "c-1", "--reason", "litigation")
    _private(live, lock_path(live))


def test_erasure_journal(live: Path) -> None:
    cli("ledger", "erase", "--email", "gone@example.com")
    journal = Settings().ledger.erasure_journal_path
    _private(journal)


def test_exports_keys_checkpoints_and_backups(live: Path, tmp_path: Path) -> None:
    out = tmp_path / "evidence" / "2026"
    cli("ledger", "export", str(out / "rows.csv"))
    _private(out / "rows.csv", out, out.parent)
    keys = tmp_path / "keys"
    keys.mkdir()
    cli("ledger", "keygen", str(keys / "op.pem"), str(keys / "op.pub"))
    _private(keys / "op.pem", keys / "op.pub")
    point = out / "head.json"
    cli("ledger", "checkpoint", str(point), "--signing-key", str(keys / "op.pem"))
    cli("ledger", "cosign", str(point), "--signing-key", str(keys / "op.pem"))
    _private(*out.glob("head.json*"))  # and the erasure journal's copy, when there is one
    backups = tmp_path / "backups" / "daily"
    cli("ledger", "backup", str(backups / "snapzen.db"))
    _private(backups / "snapzen.db", backups, backups.parent)


def test_access_pack(live: Path, tmp_path: Path) -> None:
    pack = tmp_path / "requests" / "r-1"
    cli("ledger", "access", "--case", "c-404", "--out", str(pack))
    _private(pack, pack.parent, pack / "subject.json", pack / "subject.html")


def test_restore_the_restored_ledger_and_the_replaced_files(live: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    cli("ledger", "backup", str(backup))
    cli("ledger", "hold", "add", "--case", "c-1", "--reason", "litigation")  # a -wal to move
    cli("ledger", "restore", str(backup))
    replaced = sorted(live.parent.glob(f"{live.name}.replaced-*"))
    assert replaced
    _private(live, *replaced, *live.parent.iterdir())


def test_backfill_log_file(tmp_path: Path) -> None:
    path = tmp_path / "snapzen-backfill.log"
    with log_file(path) as handle:
        handle.write("{}\n")
    _private(path)


def test_sandbox_ready_file_and_log(sandbox: Sandbox, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    server.write_ready_file(ready, sandbox)
    _private(ready)
    with open_private_binary(tmp_path / "ready.json.log") as log:
        log.write(b"started\n")
    _private(tmp_path / "ready.json.log")


def test_web_workdir_snapshot_metadata_and_plugin(ledger_path: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "web" / "work"
    snapshot, metadata, _ = web.prepare(ledger_path, workdir)
    plugins = auditor_ui.write_plugin(workdir)
    _private(workdir, workdir.parent, snapshot, metadata, plugins, *plugins.iterdir())
