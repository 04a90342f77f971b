"""``snapzen retention``: delete Zendesk tickets whose retention has ended. Thin over
snapzen.commands.retention."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from snapzen import commands  # each module imported when first named (start-up time)
from snapzen.cli.common import (
    ActorOption,
    FormatOption,
    WaitOption,
    actor_name,
    command,
    opt,
    settings_from,
    show,
)
from snapzen.commands import summaries  # light: the standard library

app = typer.Typer(
    help="Retention: delete the Zendesk tickets whose retention period has ended.",
    no_args_is_help=True,
)


@command(app)
def sweep(
    dry_run: Annotated[
        bool,
        opt(
            "",
            "Only list what is due, would be purged, and the Zendesk end-user profiles "
            "that would be deleted (Zendesk read-only); no write.",
            "--dry-run",
        ),
    ] = False,
    as_of: Annotated[
        datetime | None,
        opt(
            "YYYY-MM-DD",
            "Count retention as ended by this day (YYYY-MM-DD; default today, "
            "UTC). A future day needs --dry-run.",
            formats=["%Y-%m-%d"],
        ),
    ] = None,
    purge: Annotated[
        bool | None,
        opt(
            "",
            "Also permanently delete at once (deleted_tickets/destroy_many) instead of "
            "waiting out Zendesk's 30 days. Default: transfer.purge_on_expiry.",
            "--purge/--no-purge",
        ),
    ] = None,
    wait: WaitOption = False,
    actor: ActorOption = None,
    reconcile: Annotated[
        bool,
        opt(
            "",
            "Also search Zendesk for tickets tagged expires_YYYY_MM with a month already "
            "over that the database does not know (archived ones too), and delete them.",
            "--reconcile",
        ),
    ] = False,
    reconcile_months: Annotated[
        int, opt("N", "How many past months of expires_ tags --reconcile searches.")
    ] = 36,
    fmt: FormatOption = None,
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
    settings = settings_from()
    result = commands.retention.run_sweep(
        settings,
        as_of=as_of.date() if as_of else None,
        dry_run=dry_run,
        purge=purge,
        wait=wait,
        reconcile=reconcile,
        reconcile_months=reconcile_months,
        actor=actor_name(actor, settings),
    )
    show(summaries.said("sweep", r=result), result.as_dict(), result.exit_code)
