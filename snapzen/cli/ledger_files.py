"""`snapzen ledger backup | restore | reapply-erasures`: copies of the ledger, and putting one
back. Thin over snapzen.commands.backup, .restore and .reapply."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    OverwriteOption,
    WaitOption,
    actor_name,
    command,
    opt,
    say,
    settings_from,
)
from snapzen.cli.init import (
    JournalOption,
    NoJournalOption,
    ViaChoice,
    ViaOption,
    progress,
)
from snapzen.cli.ledger_options import LockWait, lock_seconds
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import errors

app = typer.Typer()


@command(app, "reapply-erasures", refused="re-applying the erasure journal NOT done")
def reapply_erasures(
    journal: Annotated[
        Path | None, opt("FILE", "Erasure journal (default: ledger.erasure_journal).")
    ] = None,
    wait: WaitOption = False,
    lock_wait: LockWait = None,
    config: ConfigOption = None,
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
    from snapzen.commands.reapply import reapply_journal  # lazy: start-up time

    result, path = reapply_journal(settings_from(config), journal, lock_seconds(wait, lock_wait))
    counts = result.as_dict()
    typer.echo(
        f"erasure journal {path}: {counts['entries']} erasure(s) re-applied; "
        f"{counts['withheld']} chat(s) withheld, {counts['events']} ledger event(s) added, "
        f"{counts['requests']} request event(s) restored"
    )
    if result.in_flight:
        progress(
            f"{len(result.in_flight)} chat(s) of erased people are being sent: run "
            "`snapzen sync`, then `snapzen ledger erase` for them again"
        )
        raise typer.Exit(errors.EXIT_PARTIAL)


@command(app)
def backup(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Where to write the copy (a new file).")
    ],
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
) -> None:  # fmt: skip
    """Copy the ledger database with SQLite's online backup API (safe while a sync runs),
    then check the copy opens and holds the same number of ledger rows; the copy is
    registered, so an erasure response names the copies that still hold the person.

    Examples:

    ```
    $ snapzen ledger backup /backups/snapzen-$(date +%F).db
    ```
    """
    from snapzen.commands.backup import backup_registered  # lazy: start-up time

    done = backup_registered(settings_from(config), file, overwrite=overwrite)
    typer.echo(f"backup {done.path}: {done.transfers} ledger row(s), {done.bytes} bytes, verified")


@command(app)
def restore(
    backup: Annotated[
        Path, typer.Argument(metavar="BACKUP", help="A file written by `snapzen ledger backup`.")
    ],
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:  # fmt: skip
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
    # Lazy: start-up time (the ledger, the HTTP stack).
    from snapzen.commands.init import restore_ledger
    from snapzen.commands.reconcile import CatchUp, Via

    settings = settings_from(config)
    how = CatchUp(
        actor_name(actor, settings), Via(via.value), erasure_journal, no_erasure_journal, progress
    )
    result = restore_ledger(settings, backup, how)
    seq, digest = result.backup_head
    typer.echo(f"restored {backup} into {result.path} (backup head: seq {seq}, {digest[:16]}…)")
    if result.replaced is not None:
        typer.echo(f"the previous file was kept as {result.replaced}")
    say(summaries.reconciled_lines(result.reconciliation))
    say(summaries.erasures_lines(result.erasures.as_dict()))
