"""``snapzen retention``: delete Zendesk tickets whose retention has ended.

Thin over snapzen.commands.retention.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    WaitOption,
    actor_name,
    echo_json,
    handle_errors,
    pick_format,
    settings_from,
)


class SweepFormat(StrEnum):
    table = "table"
    json = "json"


app = typer.Typer(
    help="Retention: delete the Zendesk tickets whose retention period has ended.",
    no_args_is_help=True,
)


@app.command()
@handle_errors
def sweep(
    config: ConfigOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            metavar="",
            help="Only list what is due, would be purged, and the Zendesk end-user profiles "
            "that would be deleted (Zendesk read-only); no write.",
        ),
    ] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="Count retention as ended by this day (YYYY-MM-DD; default today, UTC). "
            "A future day needs --dry-run.",
        ),
    ] = None,
    purge: Annotated[
        bool | None,
        typer.Option(
            "--purge/--no-purge",
            metavar="",
            help="Also permanently delete at once (deleted_tickets/destroy_many) instead of "
            "waiting out Zendesk's 30 days. Default: transfer.purge_on_expiry.",
        ),
    ] = None,
    wait: WaitOption = False,
    actor: ActorOption = None,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            metavar="",
            help="Also search Zendesk for tickets tagged expires_YYYY_MM with a month already "
            "over that the database does not know (archived ones too), and delete them.",
        ),
    ] = False,
    reconcile_months: Annotated[
        int,
        typer.Option(
            metavar="N", help="How many past months of expires_ tags --reconcile searches."
        ),
    ] = 36,
    fmt: Annotated[
        SweepFormat | None, typer.Option("--format", help="table (default) or json.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Delete (in batches of up to 100) every ticket snapzen created whose retention ended,
    from snapzen's own records, and append an `expired` ledger event per ticket.

    Safe to rerun and to interrupt. Exit codes: 0 done, 1 aborted, 2 configuration error,
    3 finished but some tickets were not confirmed deleted (or not purged); rerun later.

    Examples:

    ```
    $ snapzen retention sweep --dry-run
    $ snapzen retention sweep --json
    ```
    """
    from snapzen.commands.retention import run_sweep  # lazy: start-up time
    from snapzen.commands.retention_forget import describe

    shown = pick_format(fmt, json_output, SweepFormat.table, SweepFormat.json)
    settings = settings_from(config)
    result = run_sweep(
        settings,
        as_of=as_of.date() if as_of else None,
        dry_run=dry_run,
        purge=purge,
        wait=wait,
        reconcile=reconcile,
        reconcile_months=reconcile_months,
        actor=actor_name(actor, settings),
    )
    if shown is SweepFormat.json:
        echo_json(result.as_dict())
    elif result.dry_run:
        typer.echo(
            f"retention sweep (dry run, as of {result.as_of}): {result.due} ticket(s) due "
            f"for deletion{' and purge' if result.purge else ''}"
        )
        for due in result.planned[:50]:
            typer.echo(
                f"  ticket {due.ticket_id}  case {due.case_id}  widget {due.widget_id}  "
                f"retention ended {due.retention_until}"
            )
        if result.due > 50:
            typer.echo(f"  … and {result.due - 50} more (use --json for up to 1000)")
        typer.echo(
            f"would purge {result.due if result.purge else 0} from Zendesk's deleted-tickets bin"
        )
        if not result.users_checked:
            typer.echo("Zendesk end-user profiles: not checked (Zendesk could not be asked)")
        for user_id in result.users_planned:
            typer.echo(f"would delete Zendesk user {user_id} (no ticket names them after this)")
        if result.users_kept:
            typer.echo(f"{result.users_kept} Zendesk user(s) kept: other tickets name them")
        for month in result.forgotten:
            typer.echo(describe(month, planned=True))
    else:
        typer.echo(
            f"retention sweep {result.run_id} (as of {result.as_of}): due {result.due}, "
            f"deleted {result.deleted}, already gone {result.already_gone}, "
            f"purged {result.purged}, failed {result.failed}, "
            f"previously erased {result.previously_erased}, ledger events {result.recorded}, "
            f"held {result.held}, Zendesk users deleted {result.users_deleted}, "
            f"kept {result.users_kept}"
        )
        if result.reconciled is not None:
            r = result.reconciled
            typer.echo(
                f"reconcile: {r['months']} month(s) searched; unknown expired tickets "
                f"{r['found']}, deleted {r['deleted']}, already gone {r['already_gone']}, "
                f"held {r['held']}, failed {r['failed']}"
            )
        for month in result.forgotten:
            typer.echo(describe(month, planned=False))
    if result.failed:
        typer.echo(
            f"{result.failed} ticket(s) not confirmed deleted; the next sweep retries them",
            err=True,
        )
    if result.users_failed:
        typer.echo(
            f"{result.users_failed} Zendesk user profile(s) not deleted; the next sweep retries",
            err=True,
        )
    if result.purge_failed:
        typer.echo(
            f"{result.purge_failed} deleted ticket(s) not purged; Zendesk scrubs them "
            "within 30 days",
            err=True,
        )
    raise typer.Exit(result.exit_code)
