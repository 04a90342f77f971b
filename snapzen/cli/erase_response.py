"""The erasure response of `snapzen ledger erase`: written for the person, summarised on
stdout (thin over snapzen.commands.erasure_response)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from snapzen.support import clock, errors

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import sqlite_utils

    from snapzen.clients.user_erasure import UserErasure
    from snapzen.commands.erase import ErasureResult, UserEraser
    from snapzen.support.settings import Settings


def default_dir(settings: Settings) -> Path:
    """Without --out: `responses/` beside the ledger database (as private as it is)."""
    return Path(settings.ledger.path).parent / "responses"


def lookup_profile(make: Callable[[], UserEraser]) -> UserErasure | None:
    """Read-only: the person's Zendesk profile and the tickets that still name them (those
    snapzen did not create, once its own are deleted). None, with a warning, on an error."""
    try:
        return make().plan()
    except errors.SnapzenError as exc:
        typer.echo(
            f"could not list Zendesk tickets not created by snapzen ({type(exc).__name__}); "
            "the response does not list them: rerun this erase to complete it",
            err=True,
        )
        return None


def write_response(
    settings: Settings,
    result: ErasureResult,
    *,
    request_id: str,
    out: Path | None,
    lookup: UserErasure | None,
    ledger: AbstractContextManager[sqlite_utils.Database],
) -> None:
    """Write the two files (``ledger``: opened read-only; the erasure chained its Art. 19
    notices in its own transaction, so no second wait for the writer lock)."""
    from snapzen.commands import erasure_response

    with ledger as db:
        response, path = erasure_response.respond(
            db, result, request_id=request_id,
            out_dir=out or default_dir(settings),
            snapengage_days=settings.snapengage.retention_days,
            now=clock.utcnow(), lookup=lookup, settings=settings,
        )  # fmt: skip
    for item in response.remains:
        ident = f" {item['id']}" if item["id"] is not None else ""
        typer.echo(f"remains: {item['where']}: {item['what']}{ident} until {item['until']}")
    for notice in response.recipients:
        typer.echo(
            f"art19: {notice.recipient} {notice.status} {notice.on} "
            f"(ledger {notice.seq}, notice {notice.notice_id})"
        )
    if any(n.status != "notified" for n in response.recipients):
        typer.echo(
            "Art. 19: tell each recipient `to_notify` above, then record it with "
            "`snapzen ledger notices done NOTICE --when DATE` (open ones: `snapzen ledger notices`)"
        )
    typer.echo(f"erasure response for the person: {path} (and .json)")
