"""`snapzen init [--adopt]`: where a ledger comes from; and what `init` and `ledger restore`
print about reconciling with Zendesk and re-applying the erasure journal."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    actor_name,
    command,
    opt,
    say,
    settings_from,
)
from snapzen.commands import summaries  # light: the standard library

app = typer.Typer()


class ViaChoice(StrEnum):  # commands.reconcile.Via, without importing it at start-up
    incremental = "incremental"
    search = "search"


JournalOption = Annotated[
    Path | None,
    opt("FILE", "The erasure journal to re-apply (e.g. the newest checkpoint's copy, "
        "CHECKPOINT.erasures.jsonl); default ledger.erasure_journal, which must exist.",
        "--erasure-journal"),
]  # fmt: skip
NoJournalOption = Annotated[
    bool,
    opt("", "There is no journal: state (recorded in the ledger's chain) that nobody was "
        "erased and no data-subject request was made outside this ledger.",
        "--no-erasure-journal"),
]  # fmt: skip
ViaOption = Annotated[
    ViaChoice,
    typer.Option("--via", help="How to list Zendesk's snapengage tickets: the incremental "
                 "ticket export (every ticket, no indexing delay, 10 requests/min) or search "
                 "export (100/min; tickets from the last minutes may be missing)."),
]  # fmt: skip


@command(app)
def init(
    adopt: Annotated[
        bool,
        opt("", "First record every snapengage: ticket Zendesk already holds (SnapEngage's "
            "retention window and more) as synced, so no sync creates them again.", "--adopt"),
    ] = False,
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:  # fmt: skip
    """Create the ledger at ledger.path, bound to ledger.key. Refuses if one exists.

    No other command creates a ledger. Use --adopt when this Zendesk already has tickets
    from snapzen (a lost or new ledger file).

    Examples:

    ```
    $ snapzen init
    $ snapzen init --adopt
    ```
    """
    from snapzen.commands.init import init_ledger  # lazy: start-up time
    from snapzen.commands.reconcile import CatchUp, Via

    settings = settings_from(config)
    how = CatchUp(
        actor_name(actor, settings), Via(via.value), erasure_journal, no_erasure_journal, progress
    )
    result = init_ledger(settings, how, adopt=adopt)
    typer.echo(f"created ledger {result.path} (id {result.ledger_id})")
    if result.adoption is not None:
        say(summaries.reconciled_lines(result.adoption))
    if result.erasures is not None:
        say(summaries.erasures_lines(result.erasures.as_dict()))


def progress(message: str) -> None:
    typer.echo(message, err=True)
