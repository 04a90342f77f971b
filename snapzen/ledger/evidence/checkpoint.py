"""Ed25519-signed checkpoints of the chain head, verifiable by anyone with the public key.

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
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from snapzen.ledger.rights import journal_file
from snapzen.support.errors import ConfigError

VERSION = 2
KIND = "snapzen-ledger-checkpoint"


@dataclass(frozen=True)
class Signature:
    key_fingerprint: str
    signature: str


@dataclass(frozen=True)
class SignedCheckpoint:
    seq: int
    hash: str
    row_count: int
    created_at: str
    signatures: tuple[Signature, ...] = field(default=())
    journal_lines: int | None = None
    journal_head: str | None = None

    def message(self) -> bytes:
        body: dict[str, Any] = {
            "kind": KIND,
            "version": VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "row_count": self.row_count,
            "created_at": self.created_at,
        }
        if self.journal_head is not None:
            body["journal_lines"] = self.journal_lines
            body["journal_head"] = self.journal_head
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_json(self) -> str:
        body: dict[str, Any] = json.loads(self.message())
        body["signatures"] = [
            {"key_fingerprint": s.key_fingerprint, "signature": s.signature}
            for s in self.signatures
        ]
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def signed_by(self, key: Ed25519PrivateKey) -> SignedCheckpoint:
        """This checkpoint with one more signature (a co-signature when already signed)."""
        fingerprint = fingerprint_of(key.public_key())
        if any(s.key_fingerprint == fingerprint for s in self.signatures):
            return self
        raw = base64.b64encode(key.sign(self.message())).decode("ascii")
        return replace(self, signatures=(*self.signatures, Signature(fingerprint, raw)))


class KeyNotUsed(ConfigError):
    """The checkpoint carries no signature by the given key: a question of which key, not
    evidence of tampering (exit 2)."""


def check_signature(checkpoint: SignedCheckpoint, public: Ed25519PublicKey) -> bool:
    """True when ``public`` signed it; False for a signature that does not verify (forged or
    altered); KeyNotUsed when the key never signed this checkpoint."""
    fingerprint = fingerprint_of(public)
    for signature in checkpoint.signatures:
        if signature.key_fingerprint != fingerprint:
            continue
        try:
            public.verify(
                base64.b64decode(signature.signature, validate=True), checkpoint.message()
            )
        except (InvalidSignature, ValueError):
            return False
        return True
    others = ", ".join(s.key_fingerprint for s in checkpoint.signatures) or "no key"
    raise KeyNotUsed(
        f"checkpoint is not signed by the key {fingerprint}: signed by {others} "
        "(a checkpoint under another key, not evidence of tampering)"
    )


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def fingerprint_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def journal_problem(point: SignedCheckpoint, path: Path, key: bytes | None) -> str | None:
    """The journal must still hold, as line ``journal_lines``, the line whose MAC the
    checkpoint signed, and every line up to it unbroken (with ``key``, each MAC verified too);
    None when it does, or when the checkpoint predates journal heads."""
    if point.journal_head is None or point.journal_lines is None:
        return None
    if point.journal_lines == 0:
        return None
    if not path.is_file():
        return (
            f"erasure journal {path} is missing; the checkpoint signed {point.journal_lines} lines"
        )
    try:
        lines = journal_file.read(path, key)
    except journal_file.JournalDamaged as exc:
        return f"erasure journal damaged: {exc}"
    if len(lines) < point.journal_lines or lines[point.journal_lines - 1].mac != point.journal_head:
        compacted = journal_file.superseded(lines, point.journal_lines)
        if compacted is not None:  # a sweep rewrote it without forgotten requests' lines
            if key is not None:
                return None
            return (
                f"erasure journal {path} was compacted on {compacted.get('at')} after the "
                "checkpoint: verify it with the ledger key"
            )
    if len(lines) < point.journal_lines:
        return (
            f"erasure journal {path} ends at line {len(lines)}; the checkpoint signed line "
            f"{point.journal_lines}: lines were deleted from its end"
        )
    if lines[point.journal_lines - 1].mac != point.journal_head:
        return (
            f"erasure journal {path}: line {point.journal_lines} is not the line the checkpoint "
            "signed: the journal was rewritten"
        )
    return None


# --- files ----------------------------------------------------------------------------------


def parse(data: dict[str, Any], path: Path | str) -> SignedCheckpoint:
    """A version-2 checkpoint from its decoded JSON; ConfigError (exit 2) when malformed."""
    expected = {"kind", "version", "seq", "hash", "row_count", "created_at", "signatures"}
    journal = {"journal_lines", "journal_head"}
    if set(data) not in (expected, expected | journal) or data.get("kind") != KIND:
        raise ConfigError(f"checkpoint file {path}: unexpected or missing fields")
    try:
        signatures = tuple(
            Signature(str(item["key_fingerprint"]), str(item["signature"]))
            for item in data["signatures"]
        )
        seq, rows, lines = data["seq"], data["row_count"], data.get("journal_lines", 0)
        if not all(type(v) is int for v in (seq, rows, lines)):
            raise TypeError("seq, row_count and journal_lines must be integers")
        head = data.get("journal_head")
        return SignedCheckpoint(
            seq, str(data["hash"]), rows, str(data["created_at"]), signatures,
            lines if head is not None else None, None if head is None else str(head),
        )  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"checkpoint file {path}: bad field {exc}") from None


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519`` writes), created 0600."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)  # exactly 0600, whatever the umask
    with os.fdopen(descriptor, "wb") as handle:
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
