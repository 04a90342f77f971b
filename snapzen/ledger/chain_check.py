"""Recomputing the ledger's hash chain, row by row, in seq order.

The table is streamed (one row in memory at a time) and the check stops at the first broken
row, because every later row depends on it and further reports would be noise. Version-2
rows come with the exact bytes their hash covers, rebuilt by SQLite (chain.V2_HASHED_SQL), so
the loop only hashes and compares; version-1 rows are rebuilt in Python.
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

from snapzen.ledger.chain import CHAINED_COLUMNS, GENESIS, V2_HASHED_SQL, row_hash


@dataclass(frozen=True)
class Problem:
    """The first point where the ledger stops matching its chain or a checkpoint."""

    seq: int
    kind: str  # edited | missing | inserted | relinked | truncated | diverged | bad_signature
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


def _stream_rows(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every version-1 row in seq order; sqlite3 cursors fetch lazily, so memory stays flat."""
    columns = [*CHAINED_COLUMNS, "hash"]
    cursor = conn.execute(
        f"SELECT {', '.join(columns)} FROM transfers WHERE chain_version IS NULL ORDER BY seq"
    )
    for values in cursor:
        yield dict(zip(columns, values, strict=True))


_ALL_SQL = (
    f"SELECT seq, prev_hash, hash, chain_version, CASE WHEN chain_version = 2 THEN "
    f"{V2_HASHED_SQL} END FROM transfers ORDER BY seq"
)


# Large ledgers are checked in seq ranges by several processes at once (each row's check
# needs only its own bytes and the previous row's hash, which the ranges' ends give back).
# Below this many rows the processes' start costs more than they save.
PARALLEL_MIN_ROWS = 200_000
MAX_WORKERS = 4
_RANGE_SQL = (
    f"SELECT seq, prev_hash, hash, chain_version, CASE WHEN chain_version = 2 THEN "
    f"{V2_HASHED_SQL} END FROM transfers WHERE seq BETWEEN ? AND ? ORDER BY seq"
)


def verify_chain(
    conn: sqlite3.Connection, *, parallel_min_rows: int = PARALLEL_MIN_ROWS
) -> VerifyResult:
    """Recompute the chain from GENESIS; stop at the first bad row.

    A large, intact, all-version-2 ledger in a file is checked by up to MAX_WORKERS
    processes, one seq range each; anything else, or any doubt in a range (a version-1 row,
    a gap, a broken link or hash), is walked by ``walk_chain`` in one pass, which names the
    first bad row exactly.
    """
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
    lo, hi = conn.execute("SELECT min(seq), max(seq) FROM transfers").fetchone()
    if workers < 2 or path is None or lo is None or hi - lo + 1 < min_rows:
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
    for (start, _), (ok, count, first_prev, last_hash) in zip(bounds, parts, strict=True):
        if not ok or first_prev != expected_prev or (start == lo and lo != 1):
            return None
        rows += count
        expected_prev = last_hash
    if rows != hi - lo + 1:
        return None
    return VerifyResult(rows=rows, head_seq=hi, head_hash=expected_prev)


def _check_range(path: str, lo: int, hi: int) -> tuple[bool, int, str | None, str]:
    """(all fine, rows, the first row's prev_hash, the last row's hash) for seq lo..hi, all
    version 2; any doubt answers "not fine" and the caller walks the whole chain."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sha256 = hashlib.sha256
    expected, prev, first_prev = lo, "", None
    try:
        for seq, row_prev, stored, version, hashed in conn.execute(_RANGE_SQL, (lo, hi)):
            if version != 2 or seq != expected or (first_prev is not None and row_prev != prev):
                return False, 0, None, ""
            if sha256(hashed).hexdigest() != stored:
                return False, 0, None, ""
            if first_prev is None:
                first_prev = row_prev
            prev, expected = stored, seq + 1
    finally:
        conn.close()
    return expected == hi + 1, hi - lo + 1, first_prev, prev


def walk_chain(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain from GENESIS in one pass; stop at the first bad row.

    Version-2 rows come with the bytes their hash covers, rebuilt by SQLite, so the loop
    only hashes and compares; version-1 rows (written before the format was versioned) are
    rebuilt in Python from a second cursor in the same seq order. Checks per row, in this
    order so the message names the most likely attack: seq continuity (a gap is a deletion,
    a repeat/step back an insertion), the link to the previous row's hash (deleted/inserted/
    reordered rows), then the row's own hash (edits).
    """
    result = VerifyResult()
    expected_seq = 1
    prev_hash = GENESIS
    before_prev_hash: str | None = None  # to tell an inserted row from a reordered one
    legacy = _stream_rows(conn)
    seen_v2 = False
    sha256 = hashlib.sha256
    for seq, row_prev, stored, version, hashed in conn.execute(_ALL_SQL):
        if version == 2 and seq == expected_seq and row_prev == prev_hash:
            if sha256(hashed).hexdigest() != stored:
                result.problems.append(_edited(seq))
                return result
            seen_v2 = True
        else:
            problem = _slow_check(
                legacy, seq, row_prev, stored, version, expected_seq, prev_hash, before_prev_hash
            )
            if problem is None and version is None and seen_v2:
                problem = Problem(
                    seq, "inserted", "a version-1 row after version-2 rows (old format forged)"
                )
            if problem is not None:
                result.problems.append(problem)
                return result
        result.rows += 1
        before_prev_hash, prev_hash = prev_hash, stored
        expected_seq = seq + 1
    if result.rows:
        result.head_seq, result.head_hash = expected_seq - 1, prev_hash
    return result


def _slow_check(
    legacy: Iterator[dict[str, Any]],
    seq: int,
    row_prev: str,
    stored: str,
    version: int | None,
    expected_seq: int,
    prev_hash: str,
    before_prev_hash: str | None,
) -> Problem | None:
    """A version-1 row, or a version-2 row out of sequence or off its link."""
    if version is None:
        row = next(legacy)  # the same seq: both cursors walk the rowid in order
        return _check_row(row, seq, expected_seq, prev_hash, before_prev_hash)
    if version != 2:
        return Problem(seq, "edited", f"unknown chain version {version!r}")
    row = {"seq": seq, "prev_hash": row_prev, "hash": stored, "chain_version": 2}
    return _check_row(row, seq, expected_seq, prev_hash, before_prev_hash)


def _edited(seq: int) -> Problem:
    return Problem(
        seq, "edited", "row content does not match its hash (row edited, or a forged row put here)"
    )


def _check_row(
    row: dict[str, Any],
    seq: int,
    expected_seq: int,
    prev_hash: str,
    before_prev_hash: str | None,
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
    if row["prev_hash"] != prev_hash:
        if before_prev_hash is not None and row["prev_hash"] == before_prev_hash:
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
    if row.get("chain_version") is None and row_hash(row) != row["hash"]:
        return _edited(seq)
    return None
