"""`snapzen ledger keygen | checkpoint | cosign | verify`: evidence an auditor can check.

Checkpoints are signed with Ed25519 (snapzen.ledger.checkpoint): the operator signs with a
private key, auditors verify with the public key alone and may co-sign with a key of their
own. Version-1 checkpoints (HMACs under the ledger key or an auditors' --key-file) are still
read, and still written with --key-file, so existing routines keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.common import (
    ConfigOption,
    OverwriteOption,
    WaitOption,
    fail,
    handle_errors,
    new_file,
)
from snapzen.cli.ledger import _evidence_settings, _open_read, app
from snapzen.support import errors
from snapzen.support.atomic import write_private

if TYPE_CHECKING:
    from snapzen.ledger import verify

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="Version-1 checkpoints: an HMAC key file (at least 16 characters) instead of "
        "the ledger key. New checkpoints should use --signing-key / --public-key.",
    ),
]
SigningKey = Annotated[
    Path | None,
    typer.Option(
        "--signing-key",
        help="Ed25519 private key (PEM, PKCS#8: `snapzen ledger keygen` or `openssl genpkey "
        "-algorithm ed25519`).",
    ),
]


def _checkpoint_key(settings: Any, key_file: Path | None) -> tuple[bytes, str]:
    """The HMAC key of a version-1 checkpoint, and its name for messages (never its value)."""
    from snapzen.ledger import verify  # lazy: start-up time
    from snapzen.support.settings import require_ledger_key  # lazy: start-up time

    if key_file is None:
        return require_ledger_key(settings), "the ledger key"
    ledger_key = settings.ledger.key.get_secret_value().encode() if settings.ledger.key else None
    return verify.read_key_file(key_file, ledger_key), f"the key in {key_file}"


@app.command()
@handle_errors
def keygen(
    private: Annotated[Path, typer.Argument(help="Private key to create (0600, PEM).")],
    public: Annotated[Path, typer.Argument(help="Public key to write (PEM), for auditors.")],
) -> None:
    """Create an Ed25519 key pair for signing checkpoints; give auditors the public key."""
    from snapzen.ledger import checkpoint as signed  # lazy: start-up time (cryptography)

    if private.exists():
        raise errors.ConfigError(f"{private} exists; not overwriting a key")
    key = signed.generate()
    signed.write_private_key(private, key)
    write_private(public, signed.public_pem(key.public_key()))  # 0600 as every file written
    typer.echo(f"key {signed.fingerprint_of(key.public_key())}: {private} (private), {public}")


@app.command()
@handle_errors
def checkpoint(
    file: Annotated[Path, typer.Argument(help="Where to write the signed checkpoint (JSON).")],
    signing_key: SigningKey = None,
    key_file: KeyFileOption = None,
    overwrite: OverwriteOption = False,
    wait: WaitOption = False,
    config: ConfigOption = None,
) -> None:
    """Write the chain head (seq, hash, row count, time) signed with Ed25519; keep the file
    off this machine (docs/auditing.md). Holds the writer lock while it reads the head and
    copies the erasure journal, so the two agree (a writer appends to the journal after its
    commit)."""
    from snapzen.ledger.db import ensure_ledger
    from snapzen.support.lock import writer_lock

    if file.suffix.lower() != ".json":
        raise errors.ConfigError(f"{file}: a checkpoint is JSON; name it *.json")
    new_file(file, overwrite)
    settings = _evidence_settings(config)  # reads the ledger and a key: no sync settings
    if signing_key is None and key_file is None:
        raise errors.ConfigError(
            "--signing-key FILE is required (an Ed25519 private key: `snapzen ledger keygen`)"
        )
    ensure_ledger(settings.ledger.path)  # exit 2 for a missing ledger, before any .lock file
    try:
        with writer_lock(settings.ledger.path, wait=wait):
            _checkpoint(settings, file, signing_key, key_file)
    except errors.LockHeld:
        fail(
            "checkpoint NOT written: another snapzen run holds the writer lock; rerun with "
            "--wait to queue behind it",
            errors.EXIT_ABORTED,
        )


def _checkpoint(settings: Any, file: Path, signing_key: Path | None, key_file: Path | None) -> None:
    """Under the writer lock: the head and the journal copy are of the same moment."""
    from snapzen.ledger import checkpoint as signed  # lazy: start-up time
    from snapzen.ledger import verify

    db = _open_read(settings)
    point: verify.Checkpoint | signed.SignedCheckpoint
    # The rights journal travels with every checkpoint (a restore re-applies it,
    # snapzen.ledger.erasure_journal) and the signature covers its head.
    copy = file.with_name(file.name + ".erasures.jsonl")
    journal = _journal_copy(settings, db.conn, copy)
    try:
        if signing_key is not None:
            point = verify.make_signed_checkpoint(
                db.conn, signed.load_private_key(signing_key), journal=journal
            )
        else:
            point = verify.make_checkpoint(db.conn, _checkpoint_key(settings, key_file)[0])
    except verify.LedgerTampered as exc:
        typer.echo(f"snapzen: ledger TAMPERED, not signing: {exc}", err=True)
        raise typer.Exit(errors.EXIT_ABORTED) from None
    verify.write_checkpoint(file, point)
    signer = (
        f"; key {point.signatures[0].key_fingerprint}"
        if isinstance(point, signed.SignedCheckpoint)
        else ""
    )
    typer.echo(f"checkpoint written to {file}: seq {point.seq}, hash {point.hash}{signer}")
    if journal is not None:
        from snapzen.commands import copies
        from snapzen.support import clock

        copies.register(settings.ledger.path, copies.JOURNAL_COPY, copy, clock.utcnow())
        typer.echo(f"erasure journal copied to {copy} ({journal[0]} line(s), head signed)")


def _journal_copy(settings: Any, conn: Any, copy: Path) -> tuple[int, str] | None:
    from snapzen.ledger import erasure_journal  # lazy: start-up time

    key = settings.ledger.key.get_secret_value().encode() if settings.ledger.key else None
    live = settings.ledger.erasure_journal_path
    known = erasure_journal.ledger_erasures(conn) if live.is_file() else []
    return erasure_journal.copy_for_checkpoint(live, copy, key, known)


@app.command()
@handle_errors
def cosign(
    file: Annotated[Path, typer.Argument(help="A signed checkpoint to add a signature to.")],
    signing_key: SigningKey = None,
) -> None:
    """Add the auditors' own Ed25519 signature to a checkpoint (no ledger needed): run it
    where the auditors' key lives, when the checkpoint is handed over."""
    from snapzen.ledger import checkpoint as signed  # lazy: start-up time
    from snapzen.ledger import verify

    if signing_key is None:
        raise errors.ConfigError("--signing-key FILE is required (the auditors' private key)")
    point = verify.read_checkpoint(file)
    if not isinstance(point, signed.SignedCheckpoint):
        raise errors.ConfigError(f"{file} is a version-1 (HMAC) checkpoint; it cannot be co-signed")
    key = signed.load_private_key(signing_key)
    verify.write_checkpoint(file, point.signed_by(key))
    typer.echo(f"{file}: co-signed by {signed.fingerprint_of(key.public_key())}")


def _signature_problems(
    loaded: list[tuple[Path, Any]], public_keys: list[Path], settings: Any, key_file: Path | None
) -> tuple[list[Any], list[verify.Problem]]:
    """Checkpoints whose signature holds, and problems for those that are forged. A
    checkpoint signed by none of the given keys is a usage error (exit 2), not tampering."""
    from snapzen.ledger import checkpoint as signed  # lazy: start-up time
    from snapzen.ledger import verify

    publics = [(path, signed.load_public_key(path)) for path in public_keys]
    good: list[Any] = []
    bad: list[verify.Problem] = []
    hmac_key: tuple[bytes, str] | None = None
    for path, point in loaded:
        if isinstance(point, signed.SignedCheckpoint):
            if not publics:
                raise errors.ConfigError(f"checkpoint {path} is signed: give --public-key FILE")
            verdicts = []
            for _, public in publics:
                try:
                    verdicts.append(signed.check_signature(point, public))
                except signed.KeyNotUsed:
                    continue
            if not verdicts:
                names = ", ".join(str(p) for p, _ in publics)
                signers = ", ".join(s.key_fingerprint for s in point.signatures)
                raise errors.ConfigError(
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
            hmac_key = hmac_key or _checkpoint_key(settings, key_file)
            problem = verify.signature_problem(point, hmac_key[0], path, hmac_key[1])
            (bad.append(problem) if problem else good.append(point))
    return good, bad


def _journal_problems(settings: Any, good: list[Any]) -> list[verify.Problem]:
    """Each signed checkpoint's journal head against the journal (ledger.erasure_journal)."""
    from snapzen.ledger import checkpoint as signed  # lazy: start-up time
    from snapzen.ledger import journal_file, verify

    key = settings.ledger.key.get_secret_value().encode() if settings.ledger.key else None
    problems = []
    try:  # every line's MAC and link (the links alone without the ledger key)
        journal_file.read(settings.ledger.erasure_journal_path, key, accept_old=lambda _: True)
    except journal_file.JournalDamaged as exc:
        problems.append(verify.Problem(0, "journal", f"erasure journal damaged: {exc}"))
    for point in good:
        if isinstance(point, signed.SignedCheckpoint):
            text = signed.journal_problem(point, settings.ledger.erasure_journal_path, key)
            if text is not None:
                problems.append(verify.Problem(point.seq, "journal", text))
    return problems


@app.command("verify")
@handle_errors
def verify_(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Signed checkpoint to compare with (repeatable); catches truncation and "
            "rewrites that recomputed every later hash.",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Ed25519 public key (PEM) a checkpoint must be signed by (repeatable: the "
            "operator's, or the auditors' co-signing key). No secret is needed.",
        ),
    ] = None,
    key_file: KeyFileOption = None,
    thorough: Annotated[
        bool,
        typer.Option(
            "--thorough",
            help="Also run SQLite's integrity check of the whole file, every index against "
            "its table (~30 s per million rows): an index rebuilt under a forged definition "
            "answers subject and case lookups with rows the chain does not hold. Run it "
            "before handing evidence over.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Recompute the hash chain and check that cases and runs agree with it; exit 1 naming
    the first bad row, 0 when intact."""
    from snapzen.ledger import agreement, verify  # lazy: start-up time

    settings = _evidence_settings(config)
    files = checkpoint or []
    loaded = [(path, verify.read_checkpoint(path)) for path in files]
    good, bad_signatures = _signature_problems(loaded, public_key or [], settings, key_file)
    db = _open_read(settings)
    result = verify.verify_ledger(db.conn, good, thorough=thorough)
    result.problems.extend(_journal_problems(settings, good))
    tables = agreement.check_tables(db.conn)
    first = result.first_problem
    for bad in bad_signatures:
        # The file, not the ledger: an altered checkpoint proves nothing either way.
        typer.echo(f"snapzen: bad checkpoint file: {bad.message}", err=True)
    if bad_signatures and first is None and not tables.problems:
        typer.echo(
            f"snapzen: the ledger itself verifies ({result.rows} rows, head seq "
            f"{result.head_seq}) but was not compared with that checkpoint; ask for an "
            "unaltered copy",
            err=True,
        )
        raise typer.Exit(errors.EXIT_ABORTED)
    if first is not None or tables.problems:
        if first is not None:
            typer.echo(f"snapzen: ledger TAMPERED: first bad row {first.line()}", err=True)
        for other in result.problems:
            if other is not first:
                typer.echo(f"snapzen: also: {other.line()}", err=True)
        for disagreement in tables.problems:
            typer.echo(
                f"snapzen: working tables disagree with the chain: {disagreement.line()}",
                err=True,
            )
        if tables.unlisted:
            typer.echo(
                f"snapzen: more disagreements than these {len(tables.problems)} were found "
                "and are not listed",
                err=True,
            )
        raise typer.Exit(errors.EXIT_ABORTED)
    typer.echo(
        f"ledger OK: {result.rows} ledger rows, head seq {result.head_seq}, hash {result.head_hash}"
        + (f"; {result.checkpoints_checked} checkpoint(s) match" if files else "")
        + ("; SQLite integrity check ok (every index agrees with its table)" if thorough else "")
    )
    typer.echo(
        f"cases and runs agree with the chain: {tables.cases_checked} cases, "
        f"{tables.runs_checked} runs checked"
        + (f"; {tables.before_log} decided before the decision log" if tables.before_log else "")
    )
    if not files:
        typer.echo(
            "note: rows deleted from the end of the chain leave it consistent; only a "
            "checkpoint kept elsewhere (--checkpoint FILE --public-key FILE) can show that"
        )
