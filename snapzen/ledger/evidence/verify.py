"""Verifying the ledger: its hash chain recomputed row by row, and checkpoints of its head.

The table is streamed (one row in memory at a time) and the check stops at the first broken
row, because every later row depends on it and further reports would be noise. Each row
comes with its stored record, the bytes its hash covers (chain.hashed_bytes), so the loop
only hashes and compares. A ledger from before schema 8 opened read-only (a backup, say) has
no records: its version-2 bytes are rebuilt by SQLite and its version-1 bytes in Python.

The chain alone proves that the rows are consistent with each other; it cannot prove that
nobody rebuilt it, because the hash is unkeyed and whoever can write the file can recompute
every later hash, nor that nobody deleted the newest rows. A checkpoint closes that gap
(``snapzen.ledger.evidence.checkpoint``): a later ``verify`` checks that row ``seq`` still
carries exactly the signed hash, which fails for any rewrite at or before it, and for a
ledger truncated below it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from snapzen.ledger.evidence.chain import (
    CHAIN_VERSION,
    GENESIS,
    hashed_bytes,
)
from snapzen.ledger.evidence.events_table import (
    altered,
    chained_table,
    has_records,
    old_rows,
    unprotected,
)
from snapzen.ledger.store.files import connect

if TYPE_CHECKING:
    from snapzen.ledger.evidence.checkpoint import Checkpoint


@dataclass(frozen=True)
class Problem:
    """The first point where the ledger stops matching its chain or a checkpoint."""

    seq: int
    # edited | missing | inserted | relinked | truncated | diverged | bad_signature | altered
    # | damaged (SQLite's integrity check, ``verify --thorough``) | journal
    # | unprotected (an append-only trigger missing)
    kind: str
    message: str

    def line(self) -> str:
        return f"seq {self.seq}: {self.message}" if self.seq else self.message


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
        """The problem named first: the earliest bad row; a missing trigger only when no row is
        bad (the usual tampering drops one to edit a row: that row is the finding)."""
        ranked = sorted(self.problems, key=lambda p: (p.kind == "unprotected", p.seq))
        return ranked[0] if ranked else None


class LedgerTampered(Exception):
    """Raised where a broken chain must stop an operation (exit 1)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.line())
        self.problem = problem


# Per row: seq, prev_hash, hash, chain_version, the hashed record (bytes), and whether the
# seq/prev_hash/chain_version inside a version-1 or -2 record are the row's own (a version-3
# record holds neither: they are hashed beside it).
_RECORD_ROWS_SQL = (
    "SELECT seq, prev_hash, hash, chain_version, CAST(record AS BLOB), "
    f"CASE WHEN chain_version IS {CHAIN_VERSION} THEN 1 WHEN json_valid(record) THEN "
    "(json_extract(record, '$.seq') IS seq AND json_extract(record, '$.prev_hash') IS prev_hash"
    " AND json_extract(record, '$.chain_version') IS chain_version) ELSE 0 END FROM main.{table}"
)
_RANK = {None: 1, 2: 2, CHAIN_VERSION: CHAIN_VERSION}  # versions in the order they were written
_Row = tuple[int, str, str, Any, Any, Any]

# Large ledgers are checked in seq ranges by several processes at once (each row's check
# needs only its own bytes and the previous row's hash, which the ranges' ends give back).
# Below this many rows the processes' start costs more than they save.
PARALLEL_MIN_ROWS = 200_000
MAX_WORKERS = 4


def _rows(conn: sqlite3.Connection, between: tuple[int, int] | None = None) -> Iterator[_Row]:
    """The chain's rows in seq order (`events`, or `transfers` before schema 9)."""
    table = chained_table(conn)
    if has_records(conn):
        where = " WHERE seq BETWEEN ? AND ?" if between else ""
        sql = _RECORD_ROWS_SQL.format(table=table) + where + " ORDER BY seq"
        yield from conn.execute(sql, between or ())
        return
    yield from ((*row, 1) for row in old_rows(conn, table))


def verify_chain(
    conn: sqlite3.Connection, *, parallel_min_rows: int = PARALLEL_MIN_ROWS
) -> VerifyResult:
    """Recompute the chain from GENESIS; stop at the first bad row.

    A large ledger in a file (schema 8: every row with its record) is checked by up to
    MAX_WORKERS processes, one seq range each; anything else, or any doubt in a range (a gap,
    a broken link or hash, a version going down), is walked by ``walk_chain`` in one pass,
    which names the first bad row exactly.
    """
    message = altered(conn)
    if message is not None:
        return VerifyResult(problems=[Problem(0, "altered", message)])
    fast = _parallel(conn, parallel_min_rows)
    return fast if fast is not None else walk_chain(conn)


def walk_chain(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain from GENESIS in one pass; stop at the first bad row."""
    return _walk(_rows(conn))[0]


def _walk(
    rows: Iterable[_Row], expected_seq: int = 1, prev_hash: str | None = GENESIS
) -> tuple[VerifyResult, str | None, int, int]:
    """(result, the first row's prev_hash, the first and the newest row's version rank).
    ``prev_hash`` None: a seq range, whose first row links to the range before it.

    Checks per row, in this order so the message names the most likely attack: seq
    continuity (a gap is a deletion, a repeat/step back an insertion), the link to the
    previous row's hash (deleted/inserted/reordered rows), then the row's own hash (edits).
    Versions only ever go up along the chain: an older-format row after a newer one is a
    forgery in a format easier to fake."""
    result = VerifyResult()
    first_prev, before_prev = prev_hash, None  # to tell an inserted row from a reordered one
    oldest = newest = 0
    sha256 = hashlib.sha256
    for seq, row_prev, stored, version, record, consistent in rows:
        if prev_hash is None:
            prev_hash = first_prev = row_prev
        if version == CHAIN_VERSION and seq == expected_seq and row_prev == prev_hash:
            digest = sha256(hashed_bytes(seq, row_prev, version, record)).hexdigest()
            problem = None if digest == stored else _edited(seq)
        else:
            problem = _link_problem(seq, row_prev, expected_seq, prev_hash, before_prev)
            problem = problem or _row_problem(seq, row_prev, stored, version, record, newest)
            if problem is None and not consistent:
                problem = Problem(
                    seq, "edited", "the record's seq, prev_hash or chain_version is not the row's"
                )
        if problem is not None:
            result.problems.append(problem)
            break
        oldest, newest = oldest or _RANK[version], max(newest, _RANK[version])
        result.rows += 1
        before_prev, prev_hash = prev_hash, stored
        expected_seq = seq + 1
    if result.rows and result.ok:
        result.head_seq, result.head_hash = expected_seq - 1, str(prev_hash)
    return result, first_prev, oldest, newest


def _row_problem(
    seq: int, row_prev: str, stored: str, version: int | None, record: bytes | None, newest: int
) -> Problem | None:
    """The row's hash against its bytes, for a row off the fast path."""
    if version not in _RANK:
        return Problem(seq, "edited", f"unknown chain version {version!r}")
    if record is None:
        return Problem(seq, "edited", f"a version-{version} row without its record")
    if hashlib.sha256(hashed_bytes(seq, row_prev, version, record)).hexdigest() != stored:
        return _edited(seq)
    if _RANK[version] < newest:
        return Problem(seq, "inserted", "an older-format row after newer ones (old format forged)")
    return None


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
    if row_prev == prev_hash:
        return None
    if before_prev_hash is not None and row_prev == before_prev_hash:
        return Problem(
            seq - 1,
            "inserted",
            f"row inserted (seq {seq} links to seq {seq - 2}, skipping seq {seq - 1})",
        )
    return Problem(
        seq,
        "relinked",
        f"prev_hash does not match the hash of seq {seq - 1} (a row was deleted, inserted or "
        f"reordered here, or seq {seq - 1} was rewritten with a recomputed hash)",
    )


def _parallel(conn: sqlite3.Connection, min_rows: int) -> VerifyResult | None:
    """The chain checked in seq ranges, one process each; None at any doubt (the caller then
    walks the whole chain, which names the first bad row)."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    path = next((str(p) for _, name, p in conn.execute("PRAGMA database_list") if name == "main"))
    lo, hi = conn.execute(f"SELECT min(seq), max(seq) FROM main.{chained_table(conn)}").fetchone()
    if workers < 2 or not path or lo != 1 or hi < min_rows or not has_records(conn):
        return None
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: one pass
        return None
    step = (hi + workers - 1) // workers
    bounds = [(start, min(start + step - 1, hi)) for start in range(1, hi + 1, step)]
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=context) as pool:
        parts = list(pool.map(_check_range, [path] * len(bounds), *zip(*bounds, strict=True)))
    expected_prev, newest = GENESIS, 0
    for part in parts:
        # Each range links to the one before, and versions only go up across ranges too.
        if part is None or part[0] != expected_prev or part[1] < newest:
            return None
        expected_prev, newest = part[2], part[3]
    return VerifyResult(rows=hi, head_seq=hi, head_hash=expected_prev)


def _check_range(path: str, lo: int, hi: int) -> tuple[str | None, int, str, int] | None:
    """Seq lo..hi walked as ``walk_chain`` walks them: (the first row's prev_hash, its
    version's rank, the last row's hash, the newest rank), or None at any doubt."""
    with connect(path, read_only=True) as conn:
        result, first_prev, oldest, newest = _walk(_rows(conn, (lo, hi)), lo, None)
    if not result.ok or result.rows != hi - lo + 1:
        return None
    return first_prev, oldest, result.head_hash, newest


def check_checkpoint(conn: sqlite3.Connection, checkpoint: Checkpoint) -> Problem | None:
    """Row ``checkpoint.seq`` must exist with exactly the signed hash."""
    signed, count, head = conn.execute(
        "SELECT (SELECT hash FROM events WHERE seq = :seq), "
        "(SELECT count(*) FROM events WHERE seq <= :seq), (SELECT max(seq) FROM events)",
        {"seq": checkpoint.seq},
    ).fetchone()
    if signed is None:
        return Problem(
            checkpoint.seq,
            "truncated",
            f"row signed in the checkpoint is gone (ledger now ends at seq {head or 0}): "
            "rows were deleted",
        )
    if signed != checkpoint.hash:
        return Problem(
            checkpoint.seq,
            "diverged",
            "hash differs from the signed checkpoint: history up to this row was rewritten "
            "(later hashes recomputed); an older checkpoint narrows down where",
        )
    if count != checkpoint.row_count:
        return Problem(
            checkpoint.seq,
            "diverged",
            f"{count} rows up to this seq, the checkpoint signed {checkpoint.row_count}",
        )
    return None


def verify_ledger(
    conn: sqlite3.Connection, checkpoints: Sequence[Checkpoint] = (), *, thorough: bool = False
) -> VerifyResult:
    """Chain plus checkpoints, read inside one transaction so both see the same snapshot.

    ``thorough``: also SQLite's ``PRAGMA integrity_check`` of the whole file, which compares
    every index with its table. An index rebuilt while the table's definition was forged
    (``writable_schema``), then the definition put back, leaves records, hashes and schema
    intact yet answers subject and case lookups with other rows; only this sees it. It reads
    every page and recomputes every indexed value: ~30 s per 1,000,000 ledger rows, so it is
    asked for, not run each time."""
    started = not conn.in_transaction
    if started:
        conn.execute("BEGIN")
    try:
        lines = (
            [str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)")]
            if thorough
            else ["ok"]
        )
        if lines != ["ok"]:
            more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
            message = f"SQLite's integrity check: {'; '.join(lines[:5])}{more}"
            return VerifyResult(problems=[Problem(0, "damaged", message)])
        result = verify_chain(conn)
        missing = unprotected(conn)
        if missing is not None:
            result.problems.append(Problem(0, "unprotected", missing))
        for checkpoint in checkpoints:
            result.checkpoints_checked += 1
            problem = check_checkpoint(conn, checkpoint)
            if problem is not None:
                result.problems.append(problem)
    finally:
        if started:
            conn.rollback()
    return result


def intact_head(conn: sqlite3.Connection) -> VerifyResult:
    """The verified chain, to sign its head. Refuses a broken chain (LedgerTampered): that
    would bless the damage."""
    result = verify_ledger(conn)
    if result.first_problem is not None:
        raise LedgerTampered(result.first_problem)
    return result
