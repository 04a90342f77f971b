"""`snapzen ledger verify`: recompute the hash chain, compare it with signed checkpoints, check
the erasure journal and that the working tables (cases, runs) agree with the chain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapzen.commands.checkpoints import checkpoint_key
from snapzen.commands.ledger_open import open_read
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.rights import journal_file
from snapzen.ledger.store.db import configured_key
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings


def _signature_problems(
    loaded: list[tuple[Path, Any]], public_keys: list[Path], settings: Settings,
    key_file: Path | None,
) -> tuple[list[Any], list[verify.Problem]]:  # fmt: skip
    """Checkpoints whose signature holds, and problems for those that are forged. A
    checkpoint signed by none of the given keys is a usage error (exit 2), not tampering."""
    publics = [(path, signed.load_public_key(path)) for path in public_keys]
    good: list[Any] = []
    bad: list[verify.Problem] = []
    hmac_key: tuple[bytes, str] | None = None
    for path, point in loaded:
        if point.version == signed.VERSION:
            if not publics:
                raise ConfigError(f"checkpoint {path} is signed: give --public-key FILE")
            verdicts = []
            for _, public in publics:
                try:
                    verdicts.append(signed.check_signature(point, public))
                except signed.KeyNotUsed:
                    continue
            if not verdicts:
                names = ", ".join(str(p) for p, _ in publics)
                signers = ", ".join(s.key_fingerprint for s in point.signatures)
                raise ConfigError(
                    f"checkpoint {path} is signed by another key ({signers}), not by {names}: "
                    "nothing to say about tampering; ask for the right public key"
                )
            if all(verdicts):
                good.append(point)
            else:
                bad.append(
                    verify.Problem(
                        point.seq,
                        "bad_signature",
                        f"checkpoint {path} signature does not verify under its key "
                        "(forged or altered checkpoint)",
                    )
                )
        else:
            hmac_key = hmac_key or checkpoint_key(settings, key_file)
            problem = signed.hmac_problem(point, hmac_key[0], path, hmac_key[1])
            (bad.append(problem) if problem else good.append(point))
    return good, bad


def _journal_problems(settings: Settings, good: list[Any]) -> list[verify.Problem]:
    """Each signed checkpoint's journal head against the journal (ledger.erasure_journal)."""
    key = configured_key(settings.ledger)
    problems = []
    try:  # every line's MAC and link (the links alone without the ledger key)
        journal_file.read(settings.ledger.erasure_journal_path, key, accept_old=lambda _: True)
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
    settings: Settings, checkpoints: list[Path], public_keys: list[Path], *,
    key_file: Path | None, thorough: bool,
) -> Verdict:  # fmt: skip
    loaded = [(path, signed.read(path)) for path in checkpoints]
    good, bad_signatures = _signature_problems(loaded, public_keys, settings, key_file)
    db = open_read(settings)
    result = verify.verify_ledger(db.conn, good, thorough=thorough)
    result.problems.extend(_journal_problems(settings, good))
    return Verdict(result, agreement.check_tables(db.conn), bad_signatures, len(checkpoints))
