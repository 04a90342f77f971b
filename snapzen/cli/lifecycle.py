"""`snapzen init [--adopt]` and `snapzen ledger restore BACKUP`: where a ledger comes from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.common import ActorOption, ConfigOption, actor_name, handle_errors, settings_from

if TYPE_CHECKING:  # not at run time: start-up time of every command
    from snapzen.commands.reconcile import ReconcileResult


class ViaChoice(StrEnum):  # commands.reconcile.Via, without importing it at start-up
    incremental = "incremental"
    search = "search"


JournalOption = Annotated[
    Path | None,
    typer.Option(
        "--erasure-journal",
        metavar="FILE",
        help="The erasure journal to re-apply (e.g. the newest checkpoint's copy, "
        "CHECKPOINT.erasures.jsonl); default ledger.erasure_journal, which must exist.",
    ),
]
NoJournalOption = Annotated[
    bool,
    typer.Option(
        "--no-erasure-journal",
        help="There is no journal: state (recorded in the ledger's chain) that nobody was "
        "erased and no data-subject request was made outside this ledger.",
    ),
]
ViaOption = Annotated[
    ViaChoice,
    typer.Option(
        "--via",
        help="How to list Zendesk's snapengage tickets: the incremental ticket export "
        "(every ticket, no indexing delay, 10 requests/min) or search export (100/min; "
        "tickets from the last minutes may be missing).",
    ),
]


def init(
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="First record every snapengage: ticket Zendesk already holds (SnapEngage's "
            "retention window and more) as synced, so no sync creates them again.",
        ),
    ] = False,
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Create the ledger at ledger.path, bound to ledger.key. Refuses if one exists.

    No other command creates a ledger. Use --adopt when this Zendesk already has tickets
    from snapzen (a lost or new ledger file).
    """
    from snapzen.commands.init import init_ledger  # lazy: start-up time
    from snapzen.commands.reconcile import Via

    settings = settings_from(config)
    result = init_ledger(
        settings, adopt=adopt, via=Via(via.value), actor=actor_name(actor, settings),
        erasure_journal=erasure_journal, no_erasure_journal=no_erasure_journal,
    )  # fmt: skip
    typer.echo(f"created ledger {result.path} (id {result.ledger_id})")
    if result.adoption is not None:
        _echo_reconciled(result.adoption)
    if result.erasures is not None:
        _echo_erasures(result.erasures.as_dict())


def restore(
    backup: Annotated[
        Path, typer.Argument(help="A file written by `snapzen ledger backup`.", metavar="BACKUP")
    ],
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Put a verified backup in place and catch up with Zendesk since it was taken.

    Refused while another snapzen holds the writer lock. The file it replaces is kept as
    <ledger>.replaced-<time>. Appends a `restored` event naming the backup's chain head.
    """
    from snapzen.commands.reconcile import Via
    from snapzen.commands.restore import restore_ledger  # lazy: start-up time

    settings = settings_from(config)
    result = restore_ledger(
        settings, backup, via=Via(via.value), actor=actor_name(actor, settings),
        erasure_journal=erasure_journal, no_erasure_journal=no_erasure_journal,
    )  # fmt: skip
    seq, digest = result.backup_head
    typer.echo(f"restored {backup} into {result.path} (backup head: seq {seq}, {digest[:16]}…)")
    if result.replaced is not None:
        typer.echo(f"the previous file was kept as {result.replaced}")
    _echo_reconciled(result.reconciliation)
    _echo_erasures(result.erasures.as_dict())


def _echo_erasures(done: dict[str, Any]) -> None:
    typer.echo(
        f"erasure journal: {done['entries']} erasure(s) re-applied, {done['withheld']} chat(s) "
        f"withheld, {done['events']} erased event(s) appended, {done['requests']} request "
        f"event(s) restored ({done['from_replaced']} known only to the replaced ledger)"
    )
    if done["no_journal"]:
        typer.echo("no erasure journal: your statement that there is none is recorded")
    if done["in_flight"]:
        typer.echo(
            f"{len(done['in_flight'])} chat(s) of erased people were being sent when the backup "
            "was taken: run `snapzen sync`, then `snapzen ledger erase` for them again",
            err=True,
        )


def _echo_reconciled(found: ReconcileResult) -> None:
    counts = found.counts
    typer.echo(
        f"Zendesk since {found.since.date().isoformat()} ({found.via.value}, "
        f"{found.pages} request(s)): {found.cases_found} snapengage case(s) with tickets; "
        f"adopted {counts.adopted}, already recorded {counts.already}, "
        f"flagged {len(counts.flagged)}"
    )
    if counts.flagged:
        typer.echo(
            f"{len(counts.flagged)} case(s) need a person (several tickets with one external "
            "id, or a ticket the ledger did not expect); see `snapzen status`",
            err=True,
        )


def register(app: typer.Typer) -> None:
    """Add `init` to ``app`` and `restore` to its `ledger` group."""
    app.command("init")(handle_errors(init))
    for group in app.registered_groups:
        if group.name == "ledger" and group.typer_instance is not None:
            group.typer_instance.command("restore")(handle_errors(restore))
