"""Opening the database and running one atomic transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from snapzen.ledger.schema import migrate
from snapzen.support.errors import ConfigError


def open_db(path: Path | str, *, read_only: bool = False) -> sqlite_utils.Database:
    """Open (and migrate, unless read-only) the snapzen database at ``path``.

    A path that cannot be a database (missing directory we may not create, a directory, a
    file that is not SQLite) is a configuration problem: ConfigError naming ledger.path."""
    try:
        return _open(Path(path), read_only)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"setting ledger.path ({path}): cannot open the database: {exc}"
        ) from None


def _open(path: Path, read_only: bool) -> sqlite_utils.Database:
    if read_only:
        if not path.is_file():
            raise FileNotFoundError("no such file")
        uri = f"file:{path.resolve()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # "not a database" now
        return sqlite_utils.Database(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    # WAL lets auditors read while a sync writes; secure_delete overwrites deleted bytes so
    # purged raw payloads (personal data) do not linger in free pages of the file.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={DURABLE}")
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


# Every commit is synced to disk before it returns (WAL, synchronous=FULL) unless the caller
# says it need not be (``transaction(durable=False)``).
DURABLE = "FULL"
UNSYNCED = "NORMAL"


@contextmanager
def transaction(db: sqlite_utils.Database, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
    """One atomic write. Use raw ``conn.execute`` inside: sqlite-utils' table helpers commit on
    their own (``with conn:``), which would split the transaction.

    ``durable=False``: this commit is not synced on its own (synchronous=NORMAL for it). A
    power cut before the next synced commit may lose it and every commit after it, never
    corrupt anything nor lose an earlier one: the WAL keeps commits in order, and a synced
    commit's fsync carries all the frames before it. Only for writes whose loss the next pass
    repairs by itself (a staged page is fetched again, a job id found by external id, a
    withheld or ignored case decided again); never for a write an outside effect follows (the
    intent before a POST) or that auditors read (ledger rows). At 10,000 chats three in four
    commits were these, and their fsyncs held the pass's thread ~0.3 s (bench/RESULTS.md, v8).
    """
    conn = db.conn
    if conn.in_transaction:
        raise RuntimeError("nested transaction")
    # Set before every transaction, durable ones too (a statement without disk I/O), so no
    # earlier failure can leave a durable commit unsynced.
    conn.execute(f"PRAGMA synchronous={DURABLE if durable else UNSYNCED}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except BaseException:
            # A commit SQLite refused (a deferred constraint, a full disk) can leave the
            # transaction open: roll it back, and raise the commit's own error.
            if conn.in_transaction:
                conn.rollback()
            raise
    finally:
        if not durable and not conn.in_transaction:
            # Writes made outside this helper (sqlite-utils commits on its own) stay synced;
            # a failure here must not hide the transaction's own error (and the next
            # transaction sets its level anyway).
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"PRAGMA synchronous={DURABLE}")
