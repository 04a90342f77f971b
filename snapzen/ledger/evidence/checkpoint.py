"""Checkpoints of the chain head: made, written, read and their signatures checked.

A checkpoint states "the ledger had ``row_count`` rows and row ``seq`` carried ``hash`` at
``created_at``". The operator signs it with an Ed25519 private key; an auditor keeps the file
and checks it later with the public key only, so verifying never needs a secret that could
forge one. Auditors may co-sign (``snapzen ledger cosign``) with a key of their own, kept off
the operator's machine: a checkpoint carrying their signature cannot have been made later by
the operator alone.

File format (version 2, JSON): kind, version, seq, hash, row_count, created_at, optionally
``journal_lines`` and ``journal_head`` (the rights journal's line count and its last line's
MAC when the checkpoint was made: the signature covers the journal too, so a line deleted
from its end or rewritten is caught, unless a keyed ``compacted`` line records that the
sweep rewrote it without forgotten requests' lines after the checkpoint; older checkpoints
without them stay valid), and
``signatures``: a list of {key_fingerprint, signature}, the signature being Ed25519 over the
canonical JSON (sorted keys, no spaces, UTF-8) of the other fields, base64-encoded. A key's
fingerprint is ``sha256:`` + hex SHA-256 of its 32 raw public bytes.

Version 1 files (still read, and written with ``--key-file``) carry ``signature`` instead: an
HMAC-SHA256, under the ledger key or an auditors' key file, over the same canonical JSON of
kind, version, seq, hash, row_count and created_at.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ConfigDict, TypeAdapter, ValidationError

from snapzen.ledger.evidence.verify import Problem, intact_head
from snapzen.ledger.rights import journal_file
from snapzen.support import clock
from snapzen.support.atomic import atomic_text, open_private_binary
from snapzen.support.errors import ConfigError

VERSION = 2
HMAC_VERSION = 1
# Signed with the other fields: the ledger key also makes subject references (HMAC of an
# email), so a fixed `kind` keeps a checkpoint signature from ever equalling one of those.
KIND = "snapzen-ledger-checkpoint"
MIN_KEY_CHARS = 16


# The fields signed, in every version; the rights journal's head too when it is recorded.
_SIGNED = {"kind", "version", "seq", "hash", "row_count", "created_at"}
_JOURNAL = {"journal_lines", "journal_head"}


class CheckpointError(ConfigError):
    """The checkpoint file cannot be read or is malformed (exit 2)."""


@dataclass(frozen=True)
class Signature:
    key_fingerprint: str
    signature: str


@dataclass(frozen=True)
class Checkpoint:
    __pydantic_config__ = ConfigDict(strict=True)  # read(): JSON types exactly, no coercion

    seq: int
    hash: str
    row_count: int
    created_at: str
    signatures: tuple[Signature, ...] = ()
    journal_lines: int | None = None
    journal_head: str | None = None
    version: int = VERSION
    signature: str = ""  # version 1: the HMAC
    kind: str = KIND

    def signed_fields(self) -> dict[str, Any]:
        names = _SIGNED | (_JOURNAL if self.journal_head is not None else set())
        return {name: getattr(self, name) for name in names}

    def message(self) -> bytes:
        # Version 1 signed its JSON as UTF-8, version 2 as ASCII (the same bytes for the
        # fields snapzen writes).
        ascii_only = self.version != HMAC_VERSION
        fields = self.signed_fields()
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
        return text.encode("utf-8")

    def to_json(self) -> str:
        body = self.signed_fields()
        if self.version == HMAC_VERSION:
            body["signature"] = self.signature
        else:
            body["signatures"] = [vars(s) for s in self.signatures]
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def signed_by(self, key: Ed25519PrivateKey) -> Checkpoint:
        """This checkpoint with one more signature (a co-signature when already signed)."""
        fingerprint = fingerprint_of(key.public_key())
        if any(s.key_fingerprint == fingerprint for s in self.signatures):
            return self
        raw = base64.b64encode(key.sign(self.message())).decode("ascii")
        return replace(self, signatures=(*self.signatures, Signature(fingerprint, raw)))


_PARSED = TypeAdapter(Checkpoint)


def hmac_of(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac.new(key, checkpoint.message(), hashlib.sha256).hexdigest()


def make(
    conn: sqlite3.Connection,
    key: Ed25519PrivateKey | bytes,
    *,
    created_at: str | None = None,
    journal: tuple[int, str] | None = None,
) -> Checkpoint:
    """Sign the verified head (LedgerTampered for a broken chain: that would bless the
    damage): with Ed25519, the rights journal's head (line count, last MAC) too when given;
    or, with a ``bytes`` key, a version-1 HMAC checkpoint."""
    result = intact_head(conn)
    stamp = created_at or clock.format(clock.now())
    if not isinstance(key, Ed25519PrivateKey):
        point = Checkpoint(result.head_seq, result.head_hash, result.rows, stamp, version=1)
        return replace(point, signature=hmac_of(key, point))
    lines, head = journal or (None, None)
    point = Checkpoint(result.head_seq, result.head_hash, result.rows, stamp, (), lines, head)
    return point.signed_by(key)


def check_signature(checkpoint: Checkpoint, public: Ed25519PublicKey) -> bool | None:
    """True when ``public`` signed it; False for a signature that does not verify (forged or
    altered); None when the key never signed this checkpoint (a question of which key, not
    evidence of tampering)."""
    fingerprint = fingerprint_of(public)
    for signature in checkpoint.signatures:
        if signature.key_fingerprint == fingerprint:
            try:
                raw = base64.b64decode(signature.signature, validate=True)
                public.verify(raw, checkpoint.message())
            except (InvalidSignature, ValueError):
                return False
            return True
    return None


def signature_problem(
    checkpoint: Checkpoint,
    path: Path | str,
    publics: list[tuple[Path, Ed25519PublicKey]],
    hmac_key: Callable[[], tuple[bytes, str]],
) -> Problem | None:
    """The verdict on a checkpoint's signature: None when it holds; a ``bad_signature``
    Problem (forged or altered: evidence of tampering, exit 1) when it does not. Version 1
    is checked under its HMAC key (``hmac_key()``: the key and its name for messages, asked
    only for one); version 2 under the auditor's public keys, each given key that signed it
    verifying. No public key given, or none of them signed it, is a usage error (ConfigError,
    exit 2): nothing can be said about tampering then."""
    if checkpoint.version == HMAC_VERSION:
        key, under = hmac_key()
        if hmac.compare_digest(hmac_of(key, checkpoint), checkpoint.signature):
            return None
        under += " (forged or altered checkpoint, or signed with another key)"
    else:
        if not publics:
            raise ConfigError(f"checkpoint {path} is signed: give --public-key FILE")
        verdicts = [check_signature(checkpoint, public) for _, public in publics]
        if all(verdict is None for verdict in verdicts):
            names = ", ".join(str(p) for p, _ in publics)
            signers = ", ".join(s.key_fingerprint for s in checkpoint.signatures)
            raise ConfigError(
                f"checkpoint {path} is signed by another key ({signers}), not by {names}: "
                "nothing to say about tampering; ask for the right public key"
            )
        if False not in verdicts:
            return None
        under = "its key (forged or altered checkpoint)"
    message = f"checkpoint {path} signature does not verify under {under}"
    return Problem(checkpoint.seq, "bad_signature", message)


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def fingerprint_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def journal_problem(point: Checkpoint, path: Path, key: bytes | None) -> str | None:
    """The journal must still hold, as line ``journal_lines``, the line whose MAC the
    checkpoint signed, and every line up to it unbroken (with ``key``, each MAC verified too);
    None when it does, or when the checkpoint predates journal heads."""
    if point.journal_head is None or not point.journal_lines:
        return None
    if not path.is_file():
        return (
            f"erasure journal {path} is missing; the checkpoint signed {point.journal_lines} lines"
        )
    try:
        lines = journal_file.read(path, key)
    except journal_file.JournalDamaged as exc:
        return f"erasure journal damaged: {exc}"
    signed = point.journal_lines
    if len(lines) >= signed and lines[signed - 1].mac == point.journal_head:
        return None
    compacted = journal_file.superseded(lines, signed)
    if compacted is not None:  # a sweep rewrote it without forgotten requests' lines
        if key is not None:
            return None
        return (
            f"erasure journal {path} was compacted on {compacted.get('at')} after the "
            "checkpoint: verify it with the ledger key"
        )
    if len(lines) < signed:
        return (
            f"erasure journal {path} ends at line {len(lines)}; the checkpoint signed line "
            f"{signed}: lines were deleted from its end"
        )
    return (
        f"erasure journal {path}: line {signed} is not the line the checkpoint "
        "signed: the journal was rewritten"
    )


# --- files ----------------------------------------------------------------------------------


def write(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically (temp file in the same directory, created 0600, fsync, rename)."""
    with atomic_text(Path(path)) as handle:
        handle.write(checkpoint.to_json())


# The fields of each version's file (its values' types: Checkpoint, read through pydantic).
_FIELDS = {HMAC_VERSION: [_SIGNED | {"signature"}], VERSION: [_SIGNED | {"signatures"}]}
_FIELDS[VERSION].append(_FIELDS[VERSION][0] | _JOURNAL)


def read(path: Path) -> Checkpoint:
    """Parse a checkpoint file; CheckpointError (exit 2) when unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint file {path} is not readable JSON: {exc}") from None
    version = data.get("version") if isinstance(data, dict) else None
    if type(version) is not int or version not in _FIELDS:
        raise CheckpointError(f"checkpoint file {path}: not a snapzen checkpoint (version 1 or 2)")
    if set(data) not in _FIELDS[version] or (version == VERSION and data["kind"] != KIND):
        raise CheckpointError(f"checkpoint file {path}: unexpected or missing fields")
    try:
        return _PARSED.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CheckpointError(
            f"checkpoint file {path}: bad field {where}: {first['msg']}"
        ) from None


def read_key_file(path: Path, ledger_key: bytes | None) -> bytes:
    """The auditors' checkpoint key (version 1): the file's text, surrounding whitespace
    removed.

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


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519`` writes), created 0600."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open_private_binary(path, exclusive=True) as handle:
        handle.write(pem)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read Ed25519 private key {path}: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"key {path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read Ed25519 public key {path}: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"key {path} is not an Ed25519 public key")
    return key
