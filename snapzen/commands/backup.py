"""`snapzen ledger backup FILE`: a consistent copy of the live database.

SQLite's online backup API copies page by page under SQLite's own locking, so it is safe
while a sync writes (WAL mode) and never yields a torn file, unlike `cp`. The copy is then
opened on its own and must hold as many ledger rows as the source did when copied.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from snapzen.commands import copies
from snapzen.ledger.store.files import checked_rows, copy_database
from snapzen.support import clock
from snapzen.support.atomic import private_dir
from snapzen.support.errors import ConfigError, FatalError
from snapzen.support.settings import Settings


@dataclass(frozen=True)
class BackupResult:
    path: Path
    transfers: int
    bytes: int


def backup_ledger(source: Path, dest: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy ``source`` to ``dest`` with the online backup API, then verify the copy."""
    if not source.exists():
        raise ConfigError(f"ledger database {source} does not exist")
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest} already exists (use --overwrite to replace it)")
    if dest.resolve() == source.resolve():
        raise ConfigError("the backup file must not be the ledger database itself")
    private_dir(dest.parent)
    # Copy into a temporary name and rename at the end: a crash never leaves a half backup
    # under the name a restore script would pick up.
    partial = dest.with_name(dest.name + ".partial")
    try:
        expected = copy_database(source, partial, count=True)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise FatalError(f"backup of {source} failed: {exc}") from exc
    got = checked_rows(partial)
    if got is None or got != expected:
        partial.unlink(missing_ok=True)
        raise FatalError(
            f"backup verification failed: copy has {got} ledger rows, source {expected}"
        )
    partial.replace(dest)
    return BackupResult(path=dest, transfers=got, bytes=dest.stat().st_size)


def backup_registered(
    settings: Settings, dest: Path, *, overwrite: bool = False, now: datetime | None = None
) -> BackupResult:
    """`snapzen ledger backup`: the copy, registered so an erasure response names the copies
    that still hold the person (snapzen.commands.copies). It is registered as made when it
    began (``now``, injected in tests): its snapshot is taken then, so a backup still being
    written while an erasure finishes holds the person and must count as made before it."""
    began = now or clock.now()
    done = backup_ledger(settings.ledger.path, dest, overwrite=overwrite)
    copies.register(settings.ledger.path, copies.BACKUP, done.path, began)
    return done
