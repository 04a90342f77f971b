"""Verifying the ledger's hash chain, and checkpoints of its head.

The chain alone proves that the rows are consistent with each other; it cannot prove that
nobody rebuilt it, because the hash is unkeyed and whoever can write the file can recompute
every later hash, nor that nobody deleted the newest rows. A checkpoint closes that gap:
``(seq, hash, row_count)`` of the head, signed with Ed25519 (``snapzen.ledger.evidence.checkpoint``;
version 1 files were HMACs, still read), kept off the machine. A later ``verify`` then checks
that row ``seq`` still carries exactly that hash, which fails for any rewrite at or before
it, and for a ledger truncated below it.

The chain itself is recomputed by ``snapzen.ledger.evidence.chain_check`` (re-exported here).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.evidence.chain_check import Problem as Problem
from snapzen.ledger.evidence.chain_check import VerifyResult as VerifyResult
from snapzen.ledger.evidence.chain_check import verify_chain as verify_chain
from snapzen.support import clock
from snapzen.support.atomic import atomic_text
from snapzen.support.errors import ConfigError

CHECKPOINT_VERSION = 1
# Signed with the other fields: the ledger key also makes subject references (HMAC of an
# email), so a fixed `kind` keeps a checkpoint signature from ever equalling one of those.
CHECKPOINT_KIND = "snapzen-ledger-checkpoint"


class CheckpointError(ConfigError):
    """The checkpoint file cannot be read or is malformed (exit 2)."""


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


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac.new(key, _canonical(checkpoint.signed_fields()), hashlib.sha256).hexdigest()


def check_checkpoint(
    conn: sqlite3.Connection, checkpoint: Checkpoint | signed.SignedCheckpoint
) -> Problem | None:
    """Row ``checkpoint.seq`` must exist with exactly the signed hash."""
    row = conn.execute("SELECT hash FROM events WHERE seq = ?", (checkpoint.seq,)).fetchone()
    if row is None:
        head = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
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
        "SELECT count(*) FROM events WHERE seq <= ?", (checkpoint.seq,)
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
    *,
    thorough: bool = False,
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
        result = _integrity_problems(conn) if thorough else VerifyResult()
        if not result.ok:
            return result
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


def _integrity_problems(conn: sqlite3.Connection) -> VerifyResult:
    lines = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)")]
    if lines == ["ok"]:
        return VerifyResult()
    return VerifyResult(
        problems=[
            Problem(
                0,
                "damaged",
                f"SQLite's integrity check: {'; '.join(lines[:5])}"
                + (f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""),
            )
        ]
    )


# --- checkpoint files ---------------------------------------------------------------


def _intact_head(conn: sqlite3.Connection) -> VerifyResult:
    """The verified chain, to sign its head. Refuses a broken chain: that would bless the
    damage."""
    result = verify_ledger(conn)
    problem = result.first_problem
    if problem is not None:
        raise LedgerTampered(problem)
    return result


def make_checkpoint(
    conn: sqlite3.Connection, key: bytes, *, created_at: str | None = None
) -> Checkpoint:
    """Sign the current head with an HMAC under ``key`` (a version-1 checkpoint)."""
    result = _intact_head(conn)
    unsigned = Checkpoint(
        seq=result.head_seq,
        hash=result.head_hash,
        created_at=created_at or clock.format(clock.now()),
        row_count=result.rows,
    )
    return Checkpoint(**{**unsigned.signed_fields(), "signature": sign(key, unsigned)})


def make_signed_checkpoint(
    conn: sqlite3.Connection,
    key: Ed25519PrivateKey,
    *,
    created_at: str | None = None,
    journal: tuple[int, str] | None = None,
) -> signed.SignedCheckpoint:
    """Sign the current head with Ed25519, and the rights journal's head (line count, last
    MAC) when given."""
    result = _intact_head(conn)
    unsigned = signed.SignedCheckpoint(
        seq=result.head_seq,
        hash=result.head_hash,
        row_count=result.rows,
        created_at=created_at or clock.format(clock.now()),
        journal_lines=journal[0] if journal else None,
        journal_head=journal[1] if journal else None,
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
