"""`snapzen ledger keygen | checkpoint | cosign | verify`: evidence an auditor can check.

Thin over snapzen.commands.checkpoints: the operator signs checkpoints with
an Ed25519 private key, auditors verify with the public key alone and may co-sign.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import (
    ConfigOption,
    OverwriteOption,
    WaitOption,
    command,
    evidence_settings,
    new_file,
    opt,
    say,
)
from snapzen.support import errors

app = typer.Typer()

KeyFileOption = Annotated[
    Path | None,
    opt("FILE", "Version-1 checkpoints: an HMAC key file (at least 16 characters) instead of "
        "the ledger key. New checkpoints should use --signing-key / --public-key."),
]  # fmt: skip
SigningKey = Annotated[
    Path | None,
    opt("FILE", "Ed25519 private key (PEM, PKCS#8: `snapzen ledger keygen` or `openssl "
        "genpkey -algorithm ed25519`)."),
]  # fmt: skip


def _say(line: str) -> None:
    typer.echo(f"snapzen: {line}", err=True)


@command(app)
def keygen(
    private: Annotated[
        Path, typer.Argument(metavar="PRIVATE", help="Private key to create (0600, PEM).")
    ],
    public: Annotated[
        Path, typer.Argument(metavar="PUBLIC", help="Public key to write (PEM), for auditors.")
    ],
) -> None:
    """Create an Ed25519 key pair for signing checkpoints; give auditors the public key.

    Examples:

    ```
    $ snapzen ledger keygen operator.pem operator.pub.pem
    ```
    """
    from snapzen.commands import checkpoints  # lazy: start-up time (cryptography)

    fingerprint = checkpoints.keygen(private, public)
    typer.echo(f"key {fingerprint}: {private} (private), {public}")


@command(app, refused="checkpoint NOT written")
def checkpoint(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="Where to write the signed checkpoint (JSON)."),
    ],
    signing_key: SigningKey = None,
    key_file: KeyFileOption = None,
    overwrite: OverwriteOption = False,
    wait: WaitOption = False,
    config: ConfigOption = None,
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
    from snapzen.commands import checkpoints  # lazy: start-up time (cryptography)

    if file.suffix.lower() != ".json":
        raise errors.ConfigError(f"{file}: a checkpoint is JSON; name it *.json")
    new_file(file, overwrite)
    settings = evidence_settings(config)  # reads the ledger and a key: no sync settings
    try:
        done = checkpoints.write(
            settings, file, signing_key=signing_key, key_file=key_file, wait=wait
        )
    except checkpoints.LedgerTampered as exc:
        _say(f"ledger TAMPERED, not signing: {exc}")
        raise typer.Exit(errors.EXIT_ABORTED) from None
    signer = f"; key {done.signer}" if done.signer else ""
    typer.echo(f"checkpoint written to {file}: seq {done.seq}, hash {done.hash}{signer}")
    if done.journal is not None:
        typer.echo(
            f"erasure journal copied to {done.journal_copy} ({done.journal[0]} line(s), "
            "head signed)"
        )


@command(app)
def cosign(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A signed checkpoint to add a signature to.")
    ],
    signing_key: SigningKey = None,
) -> None:
    """Add the auditors' own Ed25519 signature to a checkpoint (no ledger needed): run it
    where the auditors' key lives, when the checkpoint is handed over.

    Examples:

    ```
    $ snapzen ledger cosign head-2026-01.json --signing-key auditor.pem
    ```
    """
    from snapzen.commands import checkpoints  # lazy: start-up time (cryptography)

    fingerprint = checkpoints.cosign(file, signing_key)
    typer.echo(f"{file}: co-signed by {fingerprint}")


@command(app, "verify")
def verify_(
    checkpoint: Annotated[
        list[Path] | None,
        opt("FILE", "Signed checkpoint to compare with (repeatable); catches truncation and "
            "rewrites that recomputed every later hash.", "--checkpoint"),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        opt("FILE", "Ed25519 public key (PEM) a checkpoint must be signed by (repeatable: the "
            "operator's, or the auditors' co-signing key). No secret is needed.", "--public-key"),
    ] = None,
    key_file: KeyFileOption = None,
    thorough: Annotated[
        bool,
        opt("", "Also run SQLite's integrity check of the whole file, every index against its "
            "table (~30 s per million rows): an index rebuilt under a forged definition answers "
            "subject and case lookups with rows the chain does not hold. Run it before handing "
            "evidence over.", "--thorough"),
    ] = False,
    config: ConfigOption = None,
) -> None:  # fmt: skip
    """Recompute the hash chain and check that cases and runs agree with it; exit 1 naming
    the first bad row, 0 when intact.

    Examples:

    ```
    $ snapzen ledger verify
    $ snapzen ledger verify --checkpoint head-2026-01.json --public-key operator.pub.pem
    $ snapzen ledger verify --thorough   # before handing the ledger or a copy to anyone
    ```
    """
    from snapzen.commands import summaries
    from snapzen.commands.checkpoints import verify_ledger  # lazy: start-up time

    verdict = verify_ledger(
        evidence_settings(config), checkpoint or [], public_key or [], key_file=key_file,
        thorough=thorough,
    )  # fmt: skip
    ok, lines = summaries.verify_lines(verdict, thorough)
    say(lines)
    if not ok:
        raise typer.Exit(errors.EXIT_ABORTED)
