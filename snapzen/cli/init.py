"""`snapzen init [--adopt]`: where a ledger comes from; and what `init` and `ledger restore`
print about reconciling with Zendesk and re-applying the erasure journal."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.common import ActorOption, ConfigOption, actor_name, command, opt, settings_from

if TYPE_CHECKING:  # not at run time: start-up time of every command
    from snapzen.commands.reconcile import ReconcileResult

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
            "retention window and more) as synced, so no sync creates them again."),
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
    from snapzen.commands.reconcile import Via

    settings = settings_from(config)
    result = init_ledger(
        settings, adopt=adopt, via=Via(via.value), actor=actor_name(actor, settings),
        erasure_journal=erasure_journal, no_erasure_journal=no_erasure_journal,
        progress=progress,
    )  # fmt: skip
    typer.echo(f"created ledger {result.path} (id {result.ledger_id})")
    if result.adoption is not None:
        echo_reconciled(result.adoption)
    if result.erasures is not None:
        echo_erasures(result.erasures.as_dict())


def progress(message: str) -> None:
    typer.echo(message, err=True)


def echo_erasures(done: dict[str, Any]) -> None:
    typer.echo(
        f"erasure journal: {done['entries']} erasure(s) re-applied, {done['withheld']} chat(s) "
        f"withheld, {done['events']} erased event(s) appended, {done['requests']} request "
        f"event(s) restored ({done['from_replaced']} known only to the replaced ledger)"
    )
    if done["no_journal"]:
        typer.echo("no erasure journal: your statement that there is none is recorded")
    if done["in_flight"]:
        progress(
            f"{len(done['in_flight'])} chat(s) of erased people were being sent when the backup "
            "was taken: run `snapzen sync`, then `snapzen ledger erase` for them again"
        )


def echo_reconciled(found: ReconcileResult) -> None:
    counts = found.counts
    typer.echo(
        f"Zendesk since {found.since.date().isoformat()} ({found.via.value}, "
        f"{found.pages} request(s)): {found.cases_found} snapengage case(s) with tickets; "
        f"adopted {counts.adopted}, already recorded {counts.already}, "
        f"flagged {len(counts.flagged)}"
    )
    if found.in_flight:
        typer.echo(
            f"{found.in_flight} case(s) in flight in the replaced ledger or the backup: "
            f"their jobs were waited for; {found.looked_up} found by external_id beyond the "
            "bulk read"
        )
    if counts.flagged:
        progress(
            f"{len(counts.flagged)} case(s) need a person (several tickets with one external "
            "id, or a ticket the ledger did not expect); see `snapzen status`"
        )
