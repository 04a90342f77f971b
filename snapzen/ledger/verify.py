"""Verifying the ledger's hash chain, and checkpoints of its head.

The chain alone proves that the rows are consistent with each other; it cannot prove that
nobody rebuilt it, because the hash is unkeyed and whoever can write the file can recompute
every later hash, nor that nobody deleted the newest rows. A checkpoint closes that gap:
``(seq, hash, row_count)`` of the head, signed with Ed25519 (``snapzen.ledger.checkpoint``;
version 1 files were HMACs, still read), kept off the machine. A later ``verify`` then checks
that row ``seq`` still carries exactly that hash, which fails for any rewrite at or before
it, and for a ledger truncated below it.

Verification streams the table in seq order (one row in memory at a time) and stops at the
first broken row, because every later row depends on it and further reports would be noise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from snapzen.ledger import checkpoint as signed
from snapzen.ledger.chain import CHAINED_COLUMNS, GENESIS, V2_HASHED_SQL, row_hash
from snapzen.support.atomic import atomic_text
from snapzen.support.errors import ConfigError

CHECKPOINT_VERSION = 1
# Signed with the other fields: the ledger key also makes subject references (HMAC of an
# email), so a fixed `kind` keeps a checkpoint signature from ever equalling one of those.
CHECKPOINT_KIND = "snapzen-ledger-checkpoint"


class CheckpointError(ConfigError):
    """The checkpoint file cannot be read or is malformed (exit 2)."""


@dataclass(frozen=True)
class Problem:
    """The first point where the ledger stops matching its chain or a checkpoint."""

    seq: int
    kind: str  # edited | missing | inserted | relinked | truncated | diverged | bad_signature
    message: str

    def line(self) -> str:
        return f"seq {self.seq}: {self.message}"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    created_at: str
    row_count: int
    signature: str = ""
    version: int = CHECKPOINT_VERSION
    kind: str = CHECKPOINT_KIND

    def signed_fields(self) -> dict[str, Any]:
        body = asdict(self)
        del body["signature"]
        return body


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


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac.new(key, _canonical(checkpoint.signed_fields()), hashlib.sha256).hexdigest()


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


def verify_chain(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain from GENESIS; stop at the first bad row.

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


def check_checkpoint(
    conn: sqlite3.Connection, checkpoint: Checkpoint | signed.SignedCheckpoint
) -> Problem | None:
    """Row ``checkpoint.seq`` must exist with exactly the signed hash."""
    row = conn.execute("SELECT hash FROM transfers WHERE seq = ?", (checkpoint.seq,)).fetchone()
    if row is None:
        head = conn.execute("SELECT max(seq) FROM transfers").fetchone()[0] or 0
        return Problem(
            checkpoint.seq,
            "truncated",
            f"row signed in the checkpoint is gone (ledger now ends at seq {head}): "
            "rows were deleted",
        )
    if row[0] != checkpoint.hash:
        return Problem(
            checkpoint.seq,
            "diverged",
            "hash differs from the signed checkpoint: history up to this row was rewritten "
            "(later hashes recomputed); an older checkpoint narrows down where",
        )
    count = conn.execute(
        "SELECT count(*) FROM transfers WHERE seq <= ?", (checkpoint.seq,)
    ).fetchone()[0]
    if count != checkpoint.row_count:
        return Problem(
            checkpoint.seq,
            "diverged",
            f"{count} rows up to this seq, the checkpoint signed {checkpoint.row_count}",
        )
    return None


def verify_ledger(
    conn: sqlite3.Connection,
    checkpoints: Sequence[Checkpoint | signed.SignedCheckpoint] = (),
) -> VerifyResult:
    """Chain plus checkpoints, read inside one transaction so both see the same snapshot."""
    started = not conn.in_transaction
    if started:
        conn.execute("BEGIN")
    try:
        result = verify_chain(conn)
        for checkpoint in checkpoints:
            result.checkpoints_checked += 1
            problem = check_checkpoint(conn, checkpoint)
            if problem is not None:
                result.problems.append(problem)
    finally:
        if started:
            conn.rollback()
    return result


# --- checkpoint files ---------------------------------------------------------------


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_checkpoint(
    conn: sqlite3.Connection, key: bytes, *, created_at: str | None = None
) -> Checkpoint:
    """Sign the current head. Refuses to sign a broken chain: that would bless the damage."""
    result = verify_ledger(conn)
    problem = result.first_problem
    if problem is not None:
        raise LedgerTampered(problem)
    unsigned = Checkpoint(
        seq=result.head_seq,
        hash=result.head_hash,
        created_at=created_at or utc_now(),
        row_count=result.rows,
    )
    return Checkpoint(**{**unsigned.signed_fields(), "signature": sign(key, unsigned)})


def make_signed_checkpoint(
    conn: sqlite3.Connection,
    key: Ed25519PrivateKey,
    *,
    created_at: str | None = None,
) -> signed.SignedCheckpoint:
    """Sign the current head with Ed25519. Refuses to sign a broken chain."""
    result = verify_ledger(conn)
    problem = result.first_problem
    if problem is not None:
        raise LedgerTampered(problem)
    unsigned = signed.SignedCheckpoint(
        seq=result.head_seq,
        hash=result.head_hash,
        row_count=result.rows,
        created_at=created_at or utc_now(),
    )
    return unsigned.signed_by(key)


class LedgerTampered(Exception):
    """Raised where a broken chain must stop an operation (exit 1)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.line())
        self.problem = problem


def write_checkpoint(path: Path, checkpoint: Checkpoint | signed.SignedCheckpoint) -> None:
    """Write atomically (temp file in the same directory, created 0600, fsync, rename)."""
    with atomic_text(Path(path)) as handle:
        if isinstance(checkpoint, signed.SignedCheckpoint):
            handle.write(checkpoint.to_json())
        else:
            handle.write(json.dumps(asdict(checkpoint), indent=2, sort_keys=True) + "\n")


def read_checkpoint(path: Path) -> Checkpoint | signed.SignedCheckpoint:
    """Parse a checkpoint file; CheckpointError (exit 2) when unreadable or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint file {path} is not readable JSON: {exc}") from None
    if isinstance(data, dict) and data.get("version") == signed.VERSION:
        try:
            return signed.parse(data, path)
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint file {path}: not a snapzen checkpoint (version 1 or 2)")
    try:
        checkpoint = Checkpoint(
            seq=_int(data["seq"]),
            hash=str(data["hash"]),
            created_at=str(data["created_at"]),
            row_count=_int(data["row_count"]),
            signature=str(data["signature"]),
            version=CHECKPOINT_VERSION,
            kind=str(data.get("kind", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {path}: missing or bad field {exc}") from None
    if set(data) != set(asdict(checkpoint)):
        raise CheckpointError(f"checkpoint file {path}: unexpected fields")
    return checkpoint


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def signature_problem(
    checkpoint: Checkpoint, key: bytes, path: Path | str, key_name: str = "the ledger key"
) -> Problem | None:
    """A forged or altered checkpoint is evidence of tampering (exit 1), not a usage error."""
    if hmac.compare_digest(sign(key, checkpoint), checkpoint.signature):
        return None
    return Problem(
        checkpoint.seq,
        "bad_signature",
        f"checkpoint {path} signature does not verify under {key_name} "
        "(forged or altered checkpoint, or signed with another key)",
    )


MIN_KEY_CHARS = 16


def read_key_file(path: Path, ledger_key: bytes | None) -> bytes:
    """The auditors' checkpoint key: the file's text, surrounding whitespace removed.

    Signing checkpoints with a key only the auditors hold means the operator, who holds the
    ledger key, cannot forge one (reference gdpr-and-audit.md §4.7, item 6). Refused (exit
    2, one line, never the key) when unreadable, shorter than MIN_KEY_CHARS characters, or
    equal to the ledger key, which would give that protection away."""
    try:
        key = path.read_text(encoding="utf-8").strip().encode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key file {path}: {type(exc).__name__}") from None
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"key file {path} holds fewer than {MIN_KEY_CHARS} characters")
    if ledger_key is not None and hmac.compare_digest(key, ledger_key):
        raise ConfigError(
            f"key file {path} holds the ledger key; the auditors' key must be their own"
        )
    return key
