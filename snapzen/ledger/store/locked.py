"""Lock, then open: the one way a command opens the live ledger to write to it.

The writer lock (snapzen.support.lock) is taken first and the database opened only once it
is held, so a command queued with ``--wait`` opens whatever file is at ``ledger.path`` when
its turn comes. Opened the other way round, a command queued behind `ledger restore` kept its
connection to the file the restore moved aside and wrote into ``.replaced-…``: a hold, an
erasure and its request were then missing from the live ledger. ``open_ledger`` refuses to
open the ledger for writing unless this process holds its lock.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from snapzen.ledger.store.db import ensure_ledger, open_ledger
from snapzen.support.atomic import PRIVATE_MODE
from snapzen.support.lock import writer_lock
from snapzen.support.log import get_logger, once

if TYPE_CHECKING:
    from snapzen.support.settings import LedgerSettings

log = get_logger("snapzen.ledger.store.locked")


@contextmanager
def locked_ledger(
    ledger: LedgerSettings, *, wait: bool = False, timeout: float = -1
) -> Iterator[sqlite_utils.Database]:
    """The live ledger opened for writing under the writer lock; on leaving, the WAL is
    checkpointed and the connection closed before the lock is released.

    Raises LockHeld (another writer; after ``timeout`` seconds with ``wait``) before anything
    is opened, and LedgerError (exit 2) for a missing or unusable ledger, before the lock is
    taken (its ``.lock`` file would otherwise be the first thing created there)."""
    ensure_ledger(ledger.path)
    with writer_lock(ledger.path, wait=wait, timeout=timeout):
        db = open_ledger(ledger)  # now, not before: a restore may have swapped the file
        try:
            narrow_modes(ledger.path)
            yield db
        finally:
            checkpoint_wal(db)
            db.conn.close()


def narrow_modes(path: Path | str) -> None:
    """The ledger and its -wal/-shm 0600, as every file snapzen writes: one an older snapzen
    (or a copy by hand) left readable by others holds raw payloads and personal data."""
    for suffix in ("", "-wal", "-shm"):
        name = Path(f"{path}{suffix}")
        try:
            if name.stat().st_mode & 0o777 != PRIVATE_MODE:
                os.chmod(name, PRIVATE_MODE)
                log.warning("ledger_file_mode_narrowed", file=str(name), mode="0600")
        except OSError:
            continue  # absent (no -wal yet), or another user's: nothing to narrow here


def checkpoint_wal(db: sqlite_utils.Database) -> None:
    """Copy the WAL into the database file and truncate it to zero bytes.

    In WAL mode the old page images, including raw payloads the run just purged, stay in the
    ``-wal`` file until a checkpoint; SQLite only does one itself when the last connection
    closes, which never happens while a reader (Datasette, an auditor's shell) is attached."""
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("wal_checkpoint_failed", error=str(exc))
        return
    if busy:
        # Every pass while an auditor's Datasette is open: a warning once, then debug.
        warn = log.warning if once("wal_checkpoint_incomplete") else log.debug
        warn("wal_checkpoint_incomplete", reason="a reader holds an old snapshot")
