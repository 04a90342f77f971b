"""`snapzen ledger access`: its extra option, the SnapEngage reader it needs, and what it
tells the operator beyond the pack (tickets to review, copies SnapEngage did not give)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from snapzen.clients.snapengage import SnapEngageClient
    from snapzen.commands.access import AccessResult
    from snapzen.support.settings import Settings

IncludeTickets = Annotated[
    list[int] | None,
    typer.Option(
        "--include-ticket",
        metavar="ID",
        help="A Zendesk ticket snapzen did not create, found by --email search, that you have "
        "reviewed for other people's data: put it in the pack (repeatable). Unreviewed ones "
        "are only listed.",
    ),
]


def snapengage_reader(settings: Settings) -> SnapEngageClient:
    """The Logs API client, to read SnapEngage's own copy of each chat it still holds."""
    from snapzen.clients.http import HttpClient  # lazy: start-up time
    from snapzen.clients.snapengage import SnapEngageClient

    return SnapEngageClient(settings.snapengage, HttpClient(settings.http, service="snapengage"))


def report_extras(result: AccessResult) -> None:
    """Tickets left for review and chats whose SnapEngage copy could not be read (stderr)."""
    if result.snapengage_copies:
        typer.echo(f"SnapEngage's own copy included for {result.snapengage_copies} chat(s)")
    for entry in result.for_review:
        typer.echo(
            f"NOT in the pack, review first: Zendesk ticket {entry['ticket_id']} (created "
            f"{entry.get('created_at')}, channel {entry.get('channel')}) was not created by "
            "snapzen and may hold other people's data; if it may be given to this person, "
            f"rerun with --include-ticket {entry['ticket_id']}",
            err=True,
        )
    if result.snapengage_unreadable:
        typer.echo(
            f"SnapEngage did not return its copy of chats {result.snapengage_unreadable} (rerun)",
            err=True,
        )
