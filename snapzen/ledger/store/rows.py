"""Plain sqlite3 helpers (rows, chunks of ids, one atomic transaction), apart from `db` so
that the command line's vocabulary (`commands/ledger_terms`, read by every `snapzen`
invocation) can use the auditor's queries' module without importing sqlite-utils and the
logger, and the chain's migration steps can run in a transaction without importing `db`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite_utils

T = TypeVar("T")
IDS_PER_QUERY = 500  # well under SQLite's bound on host parameters


def dict_rows(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """The rows of a query as dicts, keyed by its column names."""
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor]


def rows_if_any(conn: sqlite3.Connection, sql: str) -> list[Any]:
    """A query's rows; none when its table is missing (a ledger older than the table)."""
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # no such table
        return []


def chunks(ids: Sequence[T]) -> Iterator[tuple[Sequence[T], str]]:
    """``ids`` IDS_PER_QUERY at a time, each chunk with its ``?, ?, ...`` placeholders."""
    for offset in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[offset : offset + IDS_PER_QUERY]
        yield chunk, ", ".join("?" * len(chunk))


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
            conn.commit()
        except BaseException:
            # A commit SQLite refused (a deferred constraint, a full disk) can leave the
            # transaction open too: roll it back, and raise the error.
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
