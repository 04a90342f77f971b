"""`snapzen ledger keygen | checkpoint | cosign`: evidence an auditor can check.

Checkpoints are signed with Ed25519 (snapzen.ledger.evidence.checkpoint): the operator signs with a
private key, auditors verify with the public key alone and may co-sign with a key of their
own. Version-1 checkpoints (HMACs under the ledger key or an auditors' --key-file) are still
read, and still written with --key-file, so existing routines keep working.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from snapzen.commands import copies
from snapzen.commands.ledger_open import open_read
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.evidence.verify import LedgerTampered as LedgerTampered  # for the CLI
from snapzen.ledger.rights import erasure_journal
from snapzen.ledger.store.db import configured_key, ensure_ledger
from snapzen.support import clock
from snapzen.support.atomic import write_private
from snapzen.support.errors import ConfigError
from snapzen.support.lock import writer_lock
from snapzen.support.settings import Settings, require_ledger_key


def checkpoint_key(settings: Settings, key_file: Path | None) -> tuple[bytes, str]:
    """The HMAC key of a version-1 checkpoint, and its name for messages (never its value)."""
    if key_file is None:
        return require_ledger_key(settings), "the ledger key"
    ledger_key = configured_key(settings.ledger)
    return signed.read_key_file(key_file, ledger_key), f"the key in {key_file}"


def keygen(private: Path, public: Path) -> str:
    """Create an Ed25519 key pair (the private key 0600); returns its fingerprint."""
    if private.exists():
        raise ConfigError(f"{private} exists; not overwriting a key")
    key = signed.generate()
    signed.write_private_key(private, key)
    write_private(public, signed.public_pem(key.public_key()))  # 0600 as every file written
    return signed.fingerprint_of(key.public_key())


@dataclass
class Written:
    seq: int
    hash: str
    signer: str | None  # the key's fingerprint (None: a version-1 HMAC checkpoint)
    journal_copy: Path
    journal: tuple[int, str] | None  # lines and head of the journal copied beside it


def _journal_copy(
    settings: Settings, conn: sqlite3.Connection, copy: Path
) -> tuple[int, str] | None:
    key = configured_key(settings.ledger)
    live = settings.ledger.erasure_journal_path
    known = erasure_journal.ledger_erasures(conn) if live.is_file() else []
    return erasure_journal.copy_for_checkpoint(live, copy, key, known)


def write(
    settings: Settings, file: Path, *, signing_key: Path | None, key_file: Path | None,
    wait: bool = False,
) -> Written:  # fmt: skip
    """Write the chain head (seq, hash, row count, time), signed; LedgerTampered when the
    chain does not verify (nothing is signed then). Under the writer lock (LockHeld without
    ``wait`` when another snapzen holds it), so the head and the erasure journal's copy are of
    the same moment (a writer appends to the journal after its commit)."""
    if signing_key is None and key_file is None:
        raise ConfigError(
            "--signing-key FILE is required (an Ed25519 private key: `snapzen ledger keygen`)"
        )
    ensure_ledger(settings.ledger.path)  # exit 2 for a missing ledger, before any .lock file
    with writer_lock(settings.ledger.path, wait=wait):
        return _write(settings, file, signing_key, key_file)


def _write(
    settings: Settings, file: Path, signing_key: Path | None, key_file: Path | None
) -> Written:
    db = open_read(settings)
    # The rights journal travels with every checkpoint (a restore re-applies it,
    # snapzen.ledger.rights.erasure_journal) and the signature covers its head.
    copy = file.with_name(file.name + ".erasures.jsonl")
    journal = _journal_copy(settings, db.conn, copy)
    key = signed.load_private_key(signing_key) if signing_key else None
    point = signed.make(db.conn, key or checkpoint_key(settings, key_file)[0], journal=journal)
    signed.write(file, point)
    if journal is not None:  # an erasure response names the copies that hold the person
        copies.register(settings.ledger.path, copies.JOURNAL_COPY, copy, clock.now())
    signer = point.signatures[0].key_fingerprint if point.signatures else None
    return Written(point.seq, point.hash, signer, copy, journal)


def cosign(file: Path, signing_key: Path | None) -> str:
    """Add the auditors' signature to a signed checkpoint; returns their key's fingerprint."""
    if signing_key is None:
        raise ConfigError("--signing-key FILE is required (the auditors' private key)")
    point = signed.read(file)
    if point.version == signed.HMAC_VERSION:
        raise ConfigError(f"{file} is a version-1 (HMAC) checkpoint; it cannot be co-signed")
    key = signed.load_private_key(signing_key)
    signed.write(file, point.signed_by(key))
    return signed.fingerprint_of(key.public_key())
