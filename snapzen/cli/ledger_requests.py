"""`snapzen ledger requests [open | pause | resume | extend | close]`: the request clock.

Thin over snapzen.commands.request_clock (writing, under the writer lock) and
snapzen.ledger.requests (the listing). Emails become their HMAC reference at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    WaitOption,
    actor_name,
    echo_json,
    handle_errors,
)
from snapzen.cli.ledger_rights import (
    EmailOpt,
    ListFormat,
    lock_seconds,
    not_done,
    received_day,
)
from snapzen.support import clock, errors

if TYPE_CHECKING:
    import sqlite_utils

    from snapzen.ledger.requests import Request
    from snapzen.support.settings import Settings


class RequestType(StrEnum):
    access = "access"
    erasure = "erasure"
    rectification = "rectification"
    restriction = "restriction"
    objection = "objection"


class PauseReason(StrEnum):
    identity = "identity"
    clarification = "clarification"


class Outcome(StrEnum):
    provided = "provided"
    erased = "erased"
    rectified = "rectified"
    restricted = "restricted"
    objection_upheld = "objection_upheld"
    objection_rejected = "objection_rejected"
    refused = "refused"
    nothing_found = "nothing_found"
    withdrawn_by_person = "withdrawn_by_person"


RequestId = Annotated[str, typer.Argument(help="The request id (req-…, see `ledger requests`).")]


def show(request: Request, today: date) -> str:
    """One line: id, type, status, received, deadline, outcome, and the flags that matter."""
    flags = ""
    if request.overdue(today):
        flags += "  OVERDUE"
    if request.closed_late:
        flags += "  CLOSED LATE"
    if request.extended_months:
        flags += f"  extended +{request.extended_months} month(s)"
    if request.paused_days:
        flags += f"  paused {request.paused_days} day(s)"
    return (
        f"{request.request_id}  {request.kind:<13} {request.status:<6} received "
        f"{request.received_on}  deadline {request.deadline}  outcome {request.outcome}{flags}"
    )


def register(app: typer.Typer) -> None:
    """Add the `requests` group to the `ledger` group."""
    from snapzen.cli import ledger as base

    group = typer.Typer(
        help="Data-subject requests and their Art. 12(3) clock: list (default), open, pause, "
        "resume, extend, close.",
        invoke_without_command=True,
    )
    app.add_typer(group, name="requests")

    @group.callback()
    @handle_errors
    def listing(
        ctx: typer.Context,
        fmt: Annotated[
            ListFormat | None, typer.Option("--format", help="table (default) or json.")
        ] = None,
        json_output: JsonFlag = False,
        config: ConfigOption = None,
    ) -> None:
        """Every request: open ones first, by deadline; status (open, paused, closed), date
        received, deadline (moved by pauses and the extension), outcome, OVERDUE for an open
        request past its deadline and CLOSED LATE for one answered after it (for ever)."""
        if ctx.invoked_subcommand is not None:
            return
        from snapzen.cli.ledger_rights import _json
        from snapzen.ledger import requests

        as_json = _json(fmt, json_output)
        db = base._open_read(base._settings(config))
        today = clock.utcnow().date()
        found = requests.list_requests(db.conn, today=today)
        if as_json:
            echo_json([r.as_dict(today) for r in found])
            return
        for r in found:
            typer.echo(show(r, today))
        if not found:
            typer.echo("no requests recorded")

    def write(
        config: Any, actor: str | None, wait: bool, what: str,
        act: Callable[[sqlite_utils.Database, Settings, str], Request],
    ) -> None:  # fmt: skip
        settings = base._settings(config)
        try:
            with base._locked(settings, lock_seconds(wait, None)) as db:
                request = act(db, settings, actor_name(actor, settings))
        except errors.LockHeld:
            not_done(what)
        typer.echo(show(request, clock.utcnow().date()))

    @group.command("open")
    @handle_errors
    def open_(
        kind: Annotated[RequestType, typer.Option("--type", help="What the person asks for.")],
        received: Annotated[
            str, typer.Option("--received", help="Day the request arrived (YYYY-MM-DD).")
        ],
        email: EmailOpt = None,
        case: Annotated[str | None, typer.Option("--case", help="A SnapEngage case id.")] = None,
        ticket: Annotated[int | None, typer.Option("--ticket", help="A Zendesk ticket id.")] = None,
        actor: ActorOption = None,
        wait: WaitOption = False,
        config: ConfigOption = None,
    ) -> None:
        """Record a request as received: its deadline is one month later. Refused (exit 2) when
        received in the future or before the person's first chat in the ledger."""
        from snapzen.commands import request_clock as cmd

        day = received_day(received)
        settings = base._settings(config)
        ref = base._subject(settings, email) if email is not None else None
        target = cmd.Target(subject_ref=ref, case_id=case, ticket_id=ticket)

        def act(db: sqlite_utils.Database, s: Settings, who: str) -> Request:
            return cmd.open_request(
                db, s, kind=kind.value, received=day, target=target, actor=who, now=clock.utcnow()
            )

        write(config, actor, wait, "opening the request", act)

    def step(
        request_id: str, event: str, details: dict[str, Any], actor: str | None, wait: bool,
        config: Any,
    ) -> None:  # fmt: skip
        from snapzen.commands import request_clock as cmd

        def act(db: sqlite_utils.Database, s: Settings, who: str) -> Request:
            return cmd.move(
                db, s, request_id, event=event, details=details, actor=who, now=clock.utcnow()
            )

        write(config, actor, wait, f"{event.replace('_', ' ')}", act)

    @group.command("pause")
    @handle_errors
    def pause(
        request_id: RequestId,
        reason: Annotated[PauseReason, typer.Option("--reason", help="What the person owes.")],
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Stop the clock while the person is asked for proof of identity or a clarification;
        the days paused are added to the deadline."""
        from snapzen.ledger.requests import PAUSED

        step(request_id, PAUSED, {"reason": reason.value}, actor, wait, config)

    @group.command("resume")
    @handle_errors
    def resume(
        request_id: RequestId,
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Restart a paused request's clock."""
        from snapzen.ledger.requests import RESUMED

        step(request_id, RESUMED, {}, actor, wait, config)

    @group.command("extend")
    @handle_errors
    def extend(
        request_id: RequestId,
        reason: Annotated[str, typer.Option("--reason", help="Why (told to the person).")],
        months: Annotated[
            int, typer.Option("--months", min=1, max=2, help="Further months (1 or 2).")
        ] = 2,
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Art. 12(3): extend the deadline once, by up to two further months, before it passes;
        the reason is recorded (tell the person within the first month)."""
        from snapzen.ledger.requests import EXTENDED

        if not reason.strip():
            raise errors.ConfigError("--reason is empty: the person must be told why")
        step(request_id, EXTENDED, {"reason": reason, "months": months}, actor, wait, config)

    @group.command("close")
    @handle_errors
    def close(
        request_id: RequestId,
        outcome: Annotated[Outcome, typer.Option("--outcome", help="How it was answered.")],
        note: Annotated[str | None, typer.Option(help="A note (no personal data).")] = None,
        actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
    ) -> None:  # fmt: skip
        """Record the answer: the clock stops for good; answered after the deadline, the
        request is CLOSED LATE for ever."""
        from snapzen.commands import request_clock as cmd

        def act(db: sqlite_utils.Database, s: Settings, who: str) -> Request:
            return cmd.close(
                db, s, request_id, outcome=outcome.value, note=note, actor=who, now=clock.utcnow()
            )

        write(config, actor, wait, "closing the request", act)
