"""Recomputing the ledger's hash chain, row by row, in seq order.

The table is streamed (one row in memory at a time) and the check stops at the first broken
row, because every later row depends on it and further reports would be noise. Each row
comes with its stored record, the bytes its hash covers (chain.hashed_bytes), so the loop
only hashes and compares. A ledger from before schema 8 opened read-only (a backup, say) has
no records: its version-2 bytes are rebuilt by SQLite and its version-1 bytes in Python.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from snapzen.ledger.evidence.chain import CHAIN_VERSION, GENESIS, hashed_bytes
from snapzen.ledger.evidence.chain_legacy import CHAINED_COLUMNS, V2_BODY_SQL, row_hash
from snapzen.ledger.evidence.events_table import (
    RECORDS_SCHEMA,
    chained_table,
    expected_table_sql,
    foreign_objects,
    has_records,
    stored_sql,
    view_altered,
)
from snapzen.support.sqlite_uri import read_only_uri


@dataclass(frozen=True)
class Problem:
    """The first point where the ledger stops matching its chain or a checkpoint."""

    seq: int
    # edited | missing | inserted | relinked | truncated | diverged | bad_signature | altered
    # | damaged (SQLite's integrity check, ``verify --thorough``)
    kind: str
    message: str

    def line(self) -> str:
        return f"seq {self.seq}: {self.message}"


@dataclass
class VerifyResult:
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None


# Per row: seq, prev_hash, hash, chain_version, the hashed record (bytes), and whether the
# seq/prev_hash/chain_version inside a version-1 or -2 record are the row's own (a version-3
# record holds neither: they are hashed beside it).
_RECORD_ROWS_SQL = (
    "SELECT seq, prev_hash, hash, chain_version, CAST(record AS BLOB), "
    f"CASE WHEN chain_version IS {CHAIN_VERSION} THEN 1 WHEN json_valid(record) THEN "
    "(json_extract(record, '$.seq') IS seq AND json_extract(record, '$.prev_hash') IS prev_hash"
    " AND json_extract(record, '$.chain_version') IS chain_version) ELSE 0 END FROM main.{table}"
)
_OLD_ROWS_SQL = (
    "SELECT seq, prev_hash, hash, chain_version, CASE WHEN chain_version = 2 THEN "
    f"CAST({V2_BODY_SQL} AS BLOB) END, 1 FROM main.{{table}}"
)
_RANK = {None: 1, 2: 2, CHAIN_VERSION: CHAIN_VERSION}  # versions in the order they were written


def _rows_sql(conn: sqlite3.Connection) -> str:
    """The rows of the chain's table (`events`, or `transfers` before schema 9)."""
    sql = _RECORD_ROWS_SQL if has_records(conn) else _OLD_ROWS_SQL
    return sql.format(table=chained_table(conn))


def _altered(conn: sqlite3.Connection) -> Problem | None:
    """The table must still derive every column from the hashed records: a ledger at schema 8
    or later, or any table with a record column, must have snapzen's own definition (the
    schema-8 `transfers` in a backup, `events` from schema 9), and `transfers`, from schema
    9, must be snapzen's view of the restricted transfers or absent."""
    schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not has_records(conn) and schema < RECORDS_SCHEMA:
        return None  # a ledger from before schema 8 (a backup, read-only) keeps its old form
    table = chained_table(conn)
    found = stored_sql(conn, table)
    if found is None or found[1] != expected_table_sql(table):
        return Problem(
            0,
            "altered",
            f"the {table} table was redefined: its columns may no longer be the hashed "
            "records (compare its SQL in sqlite_master with docs/auditing.md)",
        )
    foreign = foreign_objects(conn, table)
    if foreign:
        return Problem(
            0,
            "altered",
            f"{', '.join(foreign)} on {table} is not snapzen's: a trigger can drop or rewrite "
            "appended rows and an index can answer with values the records do not hold",
        )
    if table == "events" and view_altered(conn):
        return Problem(
            0,
            "altered",
            "transfers is not snapzen's view of the restricted transfers: it may show rows "
            "the chain does not hold (compare its SQL in sqlite_master with docs/auditing.md)",
        )
    return None


def _stream_old_v1_rows(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """A pre-schema-8 ledger's version-1 rows in seq order (streamed: memory stays flat)."""
    columns = [*CHAINED_COLUMNS, "hash"]
    if has_records(conn):
        return iter(())
    cursor = conn.execute(
        f"SELECT {', '.join(columns)} FROM main.transfers WHERE chain_version IS NULL ORDER BY seq"
    )
    return (dict(zip(columns, values, strict=True)) for values in cursor)


# Large ledgers are checked in seq ranges by several processes at once (each row's check
# needs only its own bytes and the previous row's hash, which the ranges' ends give back).
# Below this many rows the processes' start costs more than they save.
PARALLEL_MIN_ROWS = 200_000
MAX_WORKERS = 4


def verify_chain(
    conn: sqlite3.Connection, *, parallel_min_rows: int = PARALLEL_MIN_ROWS
) -> VerifyResult:
    """Recompute the chain from GENESIS; stop at the first bad row.

    A large ledger in a file (schema 8: every row with its record) is checked by up to
    MAX_WORKERS processes, one seq range each; anything else, or any doubt in a range (a gap,
    a broken link or hash, a version going down), is walked by ``walk_chain`` in one pass,
    which names the first bad row exactly.
    """
    altered = _altered(conn)
    if altered is not None:
        return VerifyResult(problems=[altered])
    fast = _parallel(conn, parallel_min_rows)
    return fast if fast is not None else walk_chain(conn)


def _database_file(conn: sqlite3.Connection) -> str | None:
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(path) or None
    return None


def _parallel(conn: sqlite3.Connection, min_rows: int) -> VerifyResult | None:
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    path = _database_file(conn)
    lo, hi = conn.execute(f"SELECT min(seq), max(seq) FROM main.{chained_table(conn)}").fetchone()
    if workers < 2 or path is None or lo is None or hi - lo + 1 < min_rows:
        return None
    if not has_records(conn):
        return None
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: one pass
        return None
    step = (hi - lo + 1 + workers - 1) // workers
    bounds = [(start, min(start + step - 1, hi)) for start in range(lo, hi + 1, step)]
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=context) as pool:
        parts = list(pool.map(_check_range, [path] * len(bounds), *zip(*bounds, strict=True)))
    expected_prev = GENESIS
    rows = 0
    newest = 0
    for (start, _), part in zip(bounds, parts, strict=True):
        if part is None or part.first_prev != expected_prev or (start == lo and lo != 1):
            return None
        if part.oldest < newest:  # versions only go up along the chain, across ranges too
            return None
        rows += part.rows
        expected_prev, newest = part.last_hash, part.newest
    if rows != hi - lo + 1:
        return None
    return VerifyResult(rows=rows, head_seq=hi, head_hash=expected_prev)


@dataclass(frozen=True)
class _Range:
    """A seq range found intact: its size, its ends' links, the chain versions it holds."""

    rows: int
    first_prev: str
    last_hash: str
    oldest: int  # rank of the first row's version (_RANK)
    newest: int  # rank of the last row's version


_RANGE_SQL = _RECORD_ROWS_SQL + " WHERE seq BETWEEN ? AND ? ORDER BY seq"


def _check_range(path: str, lo: int, hi: int) -> _Range | None:
    """Seq lo..hi checked as ``walk_chain`` checks them (each row of any version against its
    stored record); None at any doubt, and the caller walks the whole chain, which names the
    first bad row."""
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    sha256 = hashlib.sha256
    expected, prev, first_prev = lo, "", None
    oldest = newest = 0
    try:
        for seq, row_prev, stored, version, record, consistent in conn.execute(
            _RANGE_SQL.format(table=chained_table(conn)), (lo, hi)
        ):
            if seq != expected or (first_prev is not None and row_prev != prev):
                return None
            if version not in _RANK or not consistent:
                return None
            rank = _RANK[version]
            hashed = hashed_bytes(seq, row_prev, version, record)
            if rank < newest or sha256(hashed).hexdigest() != stored:
                return None
            if first_prev is None:
                first_prev, oldest = row_prev, rank
            prev, expected, newest = stored, seq + 1, rank
    finally:
        conn.close()
    if expected != hi + 1 or first_prev is None:
        return None
    return _Range(hi - lo + 1, first_prev, prev, oldest, newest)


def walk_chain(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain from GENESIS in one pass; stop at the first bad row.

    Checks per row, in this order so the message names the most likely attack: seq
    continuity (a gap is a deletion, a repeat/step back an insertion), the link to the
    previous row's hash (deleted/inserted/reordered rows), then the row's own hash (edits).
    Versions only ever go up along the chain: an older-format row after a newer one is a
    forgery in a format easier to fake.
    """
    result = VerifyResult()
    expected_seq = 1
    prev_hash = GENESIS
    before_prev_hash: str | None = None  # to tell an inserted row from a reordered one
    old_v1_rows = _stream_old_v1_rows(conn)
    newest = 0
    sha256 = hashlib.sha256
    for seq, row_prev, stored, version, record, consistent in conn.execute(
        _rows_sql(conn) + " ORDER BY seq"
    ):
        if version == CHAIN_VERSION and seq == expected_seq and row_prev == prev_hash:
            if sha256(hashed_bytes(seq, row_prev, version, record)).hexdigest() != stored:
                result.problems.append(_edited(seq))
                return result
            newest = CHAIN_VERSION
        else:
            problem = _link_problem(seq, row_prev, expected_seq, prev_hash, before_prev_hash)
            if problem is None:
                problem = _content_problem(old_v1_rows, seq, row_prev, stored, version, record)
            if problem is None and _RANK.get(version, 0) < newest:
                problem = Problem(
                    seq, "inserted", "an older-format row after newer ones (old format forged)"
                )
            if problem is None and not consistent:
                problem = Problem(
                    seq, "edited", "the record's seq, prev_hash or chain_version is not the row's"
                )
            if problem is not None:
                result.problems.append(problem)
                return result
            newest = max(newest, _RANK[version])
        result.rows += 1
        before_prev_hash, prev_hash = prev_hash, stored
        expected_seq = seq + 1
    if result.rows:
        result.head_seq, result.head_hash = expected_seq - 1, prev_hash
    return result


def _content_problem(
    old_v1_rows: Iterator[dict[str, Any]],
    seq: int,
    row_prev: str,
    stored: str,
    version: int | None,
    record: bytes | None,
) -> Problem | None:
    """The row's hash against its bytes, for a row off the fast path."""
    if version not in _RANK:
        return Problem(seq, "edited", f"unknown chain version {version!r}")
    if record is None and version is None:
        return None if row_hash(next(old_v1_rows)) == stored else _edited(seq)
    if record is None:
        return Problem(seq, "edited", f"a version-{version} row without its record")
    digest = hashlib.sha256(hashed_bytes(seq, row_prev, version, record)).hexdigest()
    return None if digest == stored else _edited(seq)


def _edited(seq: int) -> Problem:
    return Problem(
        seq, "edited", "row content does not match its hash (row edited, or a forged row put here)"
    )


def _link_problem(
    seq: int, row_prev: str, expected_seq: int, prev_hash: str, before_prev_hash: str | None
) -> Problem | None:
    if seq > expected_seq:
        missing = (
            f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}–{seq - 1}"
        )
        return Problem(
            expected_seq, "missing", f"row missing ({missing} deleted; next row is seq {seq})"
        )
    if seq < expected_seq:  # cannot happen with INTEGER PRIMARY KEY, but stay defensive
        return Problem(seq, "inserted", f"unexpected sequence number (expected {expected_seq})")
    if row_prev != prev_hash:
        if before_prev_hash is not None and row_prev == before_prev_hash:
            return Problem(
                seq - 1,
                "inserted",
                f"row inserted (seq {seq} links to seq {seq - 2}, skipping seq {seq - 1})",
            )
        return Problem(
            seq,
            "relinked",
            f"prev_hash does not match the hash of seq {seq - 1} "
            f"(a row was deleted, inserted or reordered here, or seq {seq - 1} was rewritten "
            "with a recomputed hash)",
        )
    return None
