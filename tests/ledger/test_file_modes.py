"""Backups, checkpoints, exports and web snapshots are created 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.commands.backup import backup_ledger
from snapzen.ledger import audit, verify, web
from snapzen.support.atomic import atomic_text
from tests.ledger.conftest import KEY


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # an operator's usual shell: files would be 0644
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
    verify.write_checkpoint(checkpoint, verify.make_checkpoint(db.conn, KEY))
    assert _mode(checkpoint) == 0o600


def test_web_snapshot_is_0600(ledger_path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    web.make_snapshot(ledger_path, snapshot)
    assert _mode(snapshot) == 0o600
