"""The ledger as files: a consistent copy (SQLite's online backup API), a copy made whole on
its own (no -wal), the write-ahead log folded into the main file, and the integrity checks a
backup and a restore read. What a backup or a restore does with them is in snapzen.commands."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from snapzen.support.atomic import create_private
from snapzen.support.sqlite_uri import read_only_uri


def _rows(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def copy_database(source: Path, dest: Path, count: bool = False) -> int:
    """Copy ``source`` into a new 0600 ``dest`` with SQLite's backup API (a copy of a WAL file
    set is not a database), standalone (no -wal/-shm needed); with ``count``, the ledger rows
    of the snapshot copied (-1 without). sqlite3.Error when ``source`` is no database."""
    create_private(dest)  # 0600 before any page of the ledger is written into it
    with connect(source, read_only=True) as src, connect(dest) as copy:
        # One read transaction around count + copy, so the count is the copied snapshot's.
        src.execute("BEGIN")
        expected = _rows(src) if count else -1
        src.backup(copy)
        src.execute("COMMIT")
        copy.execute("PRAGMA journal_mode=DELETE")
    return expected


def checked_rows(path: Path) -> int | None:
    """The ledger rows of a copy that passes SQLite's quick check; None when it fails."""
    with connect(path, read_only=True) as conn:
        ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        return _rows(conn) if ok else None


def integrity(conn: sqlite3.Connection) -> str:
    """SQLite's full integrity check: "ok", or its first finding."""
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def make_standalone(path: Path) -> None:
    """Fold a prepared file's WAL into it and leave it in rollback-journal mode: one file that
    is a whole database on its own (its -wal and -shm removed)."""
    with connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fold_wal(path: Path, timeout: float = 5.0) -> bool:
    """Checkpoint ``path``'s WAL into its main file and truncate it; False when a reader
    kept the checkpoint from finishing. sqlite3.DatabaseError for a file SQLite cannot read."""
    with connect(path, timeout=timeout) as conn:
        return not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]


def connect(path: Path | str, *, read_only: bool = False, timeout: float = 5.0) -> _Closing:
    """A plain connection to ``path`` (read-only: no write; SQLite still opens the -wal and
    -shm of a WAL ledger to read it), closed on leaving the ``with``."""
    target = read_only_uri(path) if read_only else str(path)
    return closing(sqlite3.connect(target, uri=read_only, timeout=timeout))


_Closing = closing[sqlite3.Connection]
