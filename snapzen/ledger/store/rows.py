"""Plain sqlite3 row helpers, apart from `db` so that the command line's vocabulary
(`commands/ledger_terms`, read by every `snapzen` invocation) can use the auditor's queries'
module without importing sqlite-utils and the logger."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

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
