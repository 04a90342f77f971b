"""``snapzen retention``: delete Zendesk tickets whose retention has ended.

Thin over snapzen.commands.retention.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    FormatOption,
    JsonFlag,
    WaitOption,
    actor_name,
    command,
    echo_json,
    opt,
    settings_from,
    wants_json,
)

app = typer.Typer(
    help="Retention: delete the Zendesk tickets whose retention period has ended.",
    no_args_is_help=True,
)


@command(app)
def sweep(
    config: ConfigOption = None,
    dry_run: Annotated[
        bool,
        opt("", "Only list what is due, would be purged, and the Zendesk end-user profiles "
            "that would be deleted (Zendesk read-only); no write."),
    ] = False,
    as_of: Annotated[
        datetime | None,
        opt("YYYY-MM-DD", "Count retention as ended by this day (YYYY-MM-DD; default today, "
            "UTC). A future day needs --dry-run.", formats=["%Y-%m-%d"]),
    ] = None,
    purge: Annotated[
        bool | None,
        opt("", "Also permanently delete at once (deleted_tickets/destroy_many) instead of "
            "waiting out Zendesk's 30 days. Default: transfer.purge_on_expiry.",
            "--purge/--no-purge"),
    ] = None,
    wait: WaitOption = False,
    actor: ActorOption = None,
    reconcile: Annotated[
        bool,
        opt("", "Also search Zendesk for tickets tagged expires_YYYY_MM with a month already "
            "over that the database does not know (archived ones too), and delete them."),
    ] = False,
    reconcile_months: Annotated[
        int, opt("N", "How many past months of expires_ tags --reconcile searches.")
    ] = 36,
    fmt: FormatOption = None,
    json_output: JsonFlag = False,
) -> None:  # fmt: skip
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

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config)
    result = run_sweep(
        settings, as_of=as_of.date() if as_of else None, dry_run=dry_run, purge=purge,
        wait=wait, reconcile=reconcile, reconcile_months=reconcile_months,
        actor=actor_name(actor, settings),
    )  # fmt: skip
    if as_json:
        echo_json(result.as_dict())
    else:
        for line in _planned(result) if result.dry_run else _done(result):
            typer.echo(line)
    for count, line in (
        (result.failed, "ticket(s) not confirmed deleted; the next sweep retries them"),
        (result.users_failed, "Zendesk user profile(s) not deleted; the next sweep retries"),
        (result.purge_failed, "deleted ticket(s) not purged; Zendesk scrubs them within 30 days"),
    ):
        if count:
            typer.echo(f"{count} {line}", err=True)
    raise typer.Exit(result.exit_code)


def _planned(result: Any) -> list[str]:
    """What a dry run would do: the first 50 tickets due, the profiles, the months forgotten."""
    lines = [
        f"retention sweep (dry run, as of {result.as_of}): {result.due} ticket(s) due "
        f"for deletion{' and purge' if result.purge else ''}",
        *(f"  ticket {due.ticket_id}  case {due.case_id}  widget {due.widget_id}  "
          f"retention ended {due.retention_until}" for due in result.planned[:50]),
    ]  # fmt: skip
    if result.due > 50:
        lines.append(f"  … and {result.due - 50} more (use --json for up to 1000)")
    lines.append(
        f"would purge {result.due if result.purge else 0} from Zendesk's deleted-tickets bin"
    )
    if not result.users_checked:
        lines.append("Zendesk end-user profiles: not checked (Zendesk could not be asked)")
    lines += [
        f"would delete Zendesk user {user} (no ticket names them after this)"
        for user in result.users_planned
    ]
    if result.users_kept:
        lines.append(f"{result.users_kept} Zendesk user(s) kept: other tickets name them")
    return lines + [
        f"would forget {month['period']}: its subject-reference key destroyed and its "
        f"{month['cases']} case(s) deleted (every ticket of that month has expired)"
        for month in result.forgotten
    ]


def _done(result: Any) -> list[str]:
    lines = [
        f"retention sweep {result.run_id} (as of {result.as_of}): due {result.due}, "
        f"deleted {result.deleted}, already gone {result.already_gone}, "
        f"purged {result.purged}, failed {result.failed}, "
        f"previously erased {result.previously_erased}, ledger events {result.recorded}, "
        f"held {result.held}, Zendesk users deleted {result.users_deleted}, "
        f"kept {result.users_kept}"
    ]
    if (r := result.reconciled) is not None:
        lines.append(
            f"reconcile: {r['months']} month(s) searched; unknown expired tickets "
            f"{r['found']}, deleted {r['deleted']}, already gone {r['already_gone']}, "
            f"held {r['held']}, failed {r['failed']}"
        )
    return lines + [
        f"forgot {month['period']}: subject-reference key destroyed, "
        f"{month['cases_forgotten']} case(s) deleted"
        for month in result.forgotten
    ]
