"""`snapzen ledger keygen | checkpoint | cosign | verify`: evidence an auditor can check.

Checkpoints are signed with Ed25519 (snapzen.ledger.evidence.checkpoint): the operator signs with a
private key, auditors verify with the public key alone and may co-sign with a key of their
own. Version-1 checkpoints (HMACs under the ledger key or an auditors' --key-file) are still
read, and still written with --key-file, so existing routines keep working.

`verify` recomputes the hash chain, compares it with signed checkpoints, checks the erasure
journal and that the working tables (cases, runs) agree with the chain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapzen.commands import copies
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.evidence.verify import LedgerTampered as LedgerTampered  # for the CLI
from snapzen.ledger.rights import erasure_journal, journal_file
from snapzen.ledger.store.db import configured_key, ensure_ledger, open_ledger
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


def check_name(file: Path) -> None:
    """A checkpoint is JSON: exit 2 for a FILE not named *.json (before anything is read)."""
    if file.suffix.lower() != ".json":
        raise ConfigError(f"{file}: a checkpoint is JSON; name it *.json")


def write(
    settings: Settings,
    file: Path,
    *,
    signing_key: Path | None,
    key_file: Path | None,
    wait: bool = False,
) -> Written:
    """Write the chain head (seq, hash, row count, time), signed; LedgerTampered when the
    chain does not verify (nothing is signed then). Under the writer lock (LockHeld without
    ``wait`` when another snapzen holds it), so the head and the erasure journal's copy are of
    the same moment (a writer appends to the journal after its commit)."""
    if signing_key is None and key_file is None:
        raise ConfigError(
            "--signing-key FILE is required (an Ed25519 private key: `snapzen ledger keygen`)"
        )
    ensure_ledger(settings.ledger.path)  # exit 2 for a missing ledger, before any .lock file
    lock = writer_lock(settings.ledger.path, wait=wait)
    with lock, open_ledger(settings.ledger, read_only=True) as db:  # opened once it is held
        # The rights journal travels with every checkpoint (a restore re-applies it,
        # snapzen.ledger.rights.erasure_journal) and the signature covers its head.
        copy = file.with_name(file.name + ".erasures.jsonl")
        live = settings.ledger.erasure_journal_path
        ledger_key = configured_key(settings.ledger)
        if ledger_key is not None:  # a writer killed after its commit: its lines first
            erasure_journal.prepare(live, ledger_key, db.conn)
        known = erasure_journal.ledger_erasures(db.conn) if live.is_file() else []
        journal = erasure_journal.copy_for_checkpoint(live, copy, ledger_key, known)
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


# ---------------------------------------------------------------- verify


def _signature_problems(
    loaded: list[tuple[Path, Any]],
    public_keys: list[Path],
    settings: Settings,
    key_file: Path | None,
) -> tuple[list[Any], list[verify.Problem]]:
    """Checkpoints whose signature holds, and problems for those that are forged (the
    verdict is the checkpoint module's ``signature_problem``)."""
    publics = [(path, signed.load_public_key(path)) for path in public_keys]
    hmac_key = functools.cache(lambda: checkpoint_key(settings, key_file))
    good: list[Any] = []
    bad: list[verify.Problem] = []
    for path, point in loaded:
        problem = signed.signature_problem(point, path, publics, hmac_key)
        (bad.append(problem) if problem else good.append(point))
    return good, bad


def _journal_problems(settings: Settings, good: list[Any]) -> list[verify.Problem]:
    """Each signed checkpoint's journal head against the journal (ledger.erasure_journal)."""
    key = configured_key(settings.ledger)
    problems = []
    try:  # every line's MAC and link (the links alone without the ledger key)
        journal_file.read(settings.ledger.erasure_journal_path, key, vouched=None)
    except journal_file.JournalDamaged as exc:
        problems.append(verify.Problem(0, "journal", f"erasure journal damaged: {exc}"))
    for point in good:
        if point.version == signed.VERSION:
            text = signed.journal_problem(point, settings.ledger.erasure_journal_path, key)
            if text is not None:
                problems.append(verify.Problem(point.seq, "journal", text))
    return problems


@dataclass
class Verdict:
    chain: verify.VerifyResult
    tables: agreement.Agreement
    bad_signatures: list[verify.Problem]
    checkpoints_given: int


def verify_ledger(
    settings: Settings,
    checkpoints: list[Path],
    public_keys: list[Path],
    *,
    key_file: Path | None,
    thorough: bool,
) -> Verdict:
    loaded = [(path, signed.read(path)) for path in checkpoints]
    good, bad_signatures = _signature_problems(loaded, public_keys, settings, key_file)
    with open_ledger(settings.ledger, read_only=True) as db:
        result = verify.verify_ledger(db.conn, good, thorough=thorough)
        result.problems.extend(_journal_problems(settings, good))
        return Verdict(result, agreement.check_tables(db.conn), bad_signatures, len(checkpoints))
