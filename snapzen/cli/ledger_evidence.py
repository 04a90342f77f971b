"""`snapzen ledger keygen | checkpoint | cosign | verify | backup | restore | reapply-erasures`:
evidence an auditor can check, copies of the ledger, and putting one back.

Thin over snapzen.commands.checkpoints, .backup, .init (restore) and .reapply: the operator
signs checkpoints with an Ed25519 private key, auditors verify with the public key alone and
may co-sign.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from snapzen import commands  # each module imported when first named (start-up time)
from snapzen.cli.common import (
    ActorOption,
    JournalOption,
    LockWait,
    NoJournalOption,
    OverwriteOption,
    ViaChoice,
    ViaOption,
    WaitOption,
    catch_up,
    command,
    lock_seconds,
    new_file,
    opt,
    say,
    settings_from,
    show,
)
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import errors

app = typer.Typer()

KeyFileOption = Annotated[
    Path | None,
    opt(
        "FILE",
        "Version-1 checkpoints: an HMAC key file (at least 16 characters) instead of "
        "the ledger key. New checkpoints should use --signing-key / --public-key.",
    ),
]
SigningKey = Annotated[
    Path | None,
    opt(
        "FILE",
        "Ed25519 private key (PEM, PKCS#8: `snapzen ledger keygen` or `openssl "
        "genpkey -algorithm ed25519`).",
    ),
]


def _file(help: str, metavar: str = "FILE") -> Any:
    return typer.Argument(metavar=metavar, help=help)


@command(app, config=False)
def keygen(
    private: Annotated[Path, _file("Private key to create (0600, PEM).", "PRIVATE")],
    public: Annotated[Path, _file("Public key to write (PEM), for auditors.", "PUBLIC")],
) -> None:
    """Create an Ed25519 key pair for signing checkpoints; give auditors the public key.

    Examples:

    ```
    $ snapzen ledger keygen operator.pem operator.pub.pem
    ```
    """
    fingerprint = commands.checkpoints.keygen(private, public)
    typer.echo(f"key {fingerprint}: {private} (private), {public}")


@command(app, refused="checkpoint NOT written")
def checkpoint(
    file: Annotated[Path, _file("Where to write the signed checkpoint (JSON).")],
    signing_key: SigningKey = None,
    key_file: KeyFileOption = None,
    overwrite: OverwriteOption = False,
    wait: WaitOption = False,
) -> None:
    """Write the chain head (seq, hash, row count, time) signed with Ed25519; keep the file
    off this machine (docs/auditing.md). Holds the writer lock while it reads the head and
    copies the erasure journal, so the two agree (a writer appends to the journal after its
    commit).

    Examples:

    ```
    $ snapzen ledger checkpoint head-2026-01.json --signing-key operator.pem
    ```
    """
    checkpoints = commands.checkpoints
    checkpoints.check_name(file)
    new_file(file, overwrite)
    settings = settings_from("evidence")  # the ledger and a key: no sync settings
    try:
        done = checkpoints.write(
            settings, file, signing_key=signing_key, key_file=key_file, wait=wait
        )
    except checkpoints.LedgerTampered as exc:
        typer.echo(f"snapzen: ledger TAMPERED, not signing: {exc}", err=True)
        raise typer.Exit(errors.EXIT_ABORTED) from None
    say(summaries.said("checkpoint", done=done, file=file))


@command(app, config=False)
def cosign(
    file: Annotated[Path, _file("A signed checkpoint to add a signature to.")],
    signing_key: SigningKey = None,
) -> None:
    """Add the auditors' own Ed25519 signature to a checkpoint (no ledger needed): run it
    where the auditors' key lives, when the checkpoint is handed over.

    Examples:

    ```
    $ snapzen ledger cosign head-2026-01.json --signing-key auditor.pem
    ```
    """
    fingerprint = commands.checkpoints.cosign(file, signing_key)
    typer.echo(f"{file}: co-signed by {fingerprint}")


@command(app)
def verify(
    checkpoint: Annotated[
        list[Path] | None,
        opt(
            "FILE",
            "Signed checkpoint to compare with (repeatable); catches truncation and "
            "rewrites that recomputed every later hash.",
            "--checkpoint",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        opt(
            "FILE",
            "Ed25519 public key (PEM) a checkpoint must be signed by (repeatable: the "
            "operator's, or the auditors' co-signing key). No secret is needed.",
            "--public-key",
        ),
    ] = None,
    key_file: KeyFileOption = None,
    thorough: Annotated[
        bool,
        opt(
            "",
            "Also run SQLite's integrity check of the whole file, every index against its "
            "table (~30 s per million rows): an index rebuilt under a forged definition answers "
            "subject and case lookups with rows the chain does not hold. Run it before handing "
            "evidence over.",
            "--thorough",
        ),
    ] = False,
) -> None:
    """Recompute the hash chain and check that cases and runs agree with it; exit 1 naming
    the first bad row, 0 when intact.

    Examples:

    ```
    $ snapzen ledger verify
    $ snapzen ledger verify --checkpoint head-2026-01.json --public-key operator.pub.pem
    $ snapzen ledger verify --thorough   # before handing the ledger or a copy to anyone
    ```
    """
    verdict = commands.checkpoints.verify_ledger(
        settings_from("evidence"),
        checkpoint or [],
        public_key or [],
        key_file=key_file,
        thorough=thorough,
    )
    ok = summaries.verified(verdict)
    lines = summaries.said("verify", v=verdict, ok=ok, thorough=thorough)
    show(lines, code=errors.EXIT_OK if ok else errors.EXIT_ABORTED)


@command(app)
def backup(
    file: Annotated[Path, _file("Where to write the copy (a new file).")],
    overwrite: OverwriteOption = False,
) -> None:
    """Copy the ledger database with SQLite's online backup API (safe while a sync runs),
    then check the copy opens and holds the same number of ledger rows; the copy is
    registered, so an erasure response names the copies that still hold the person.

    Examples:

    ```
    $ snapzen ledger backup /backups/snapzen-$(date +%F).db
    ```
    """
    done = commands.copies.backup_registered(settings_from(), file, overwrite=overwrite)
    typer.echo(f"backup {done.path}: {done.transfers} ledger row(s), {done.bytes} bytes, verified")


@command(app)
def restore(
    backup: Annotated[Path, _file("A file written by `snapzen ledger backup`.", "BACKUP")],
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
) -> None:
    """Put a verified backup in place and catch up with Zendesk since it was taken.

    Refused while another snapzen holds the writer lock. Imports the replaced ledger left in
    flight are waited for first. The file it replaces is kept as
    <ledger>.replaced-<time>-<random>. Appends a `restored` event naming the backup's chain
    head.

    Examples:

    ```
    $ snapzen ledger restore /backups/snapzen-2026-12-01.db
    ```
    """
    settings = settings_from()
    how = catch_up(settings, actor, via, erasure_journal, no_erasure_journal)
    result = commands.init.restore_ledger(settings, backup, how)
    found, done = result.reconciliation, result.erasures
    show(summaries.said("restored", result=result, backup=backup, found=found, done=done))


@command(app, "reapply-erasures", refused="re-applying the erasure journal NOT done")
def reapply_erasures(
    journal: Annotated[
        Path | None, opt("FILE", "Erasure journal (default: ledger.erasure_journal).")
    ] = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
) -> None:
    """After restoring a backup by hand: re-apply every erasure and request in the journal
    (withhold the erased people's chats, record their deleted tickets, re-append request
    events) before the next sync. An edited journal is refused (exit 2, naming the line).

    Examples:

    ```
    $ snapzen ledger reapply-erasures
    $ snapzen ledger reapply-erasures --journal /backups/erasures.jsonl --wait
    ```
    """
    settings, seconds = settings_from(), lock_seconds(wait, lock_wait)
    result, path = commands.reapply.reapply_journal(settings, journal, seconds)
    lines = summaries.said("reapplied", result=result, path=path)
    show(lines, code=errors.EXIT_PARTIAL if result.in_flight else errors.EXIT_OK)
