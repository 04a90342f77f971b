"""`snapzen ledger requests [open | pause | resume | extend | close]`: the request clock.

Thin over snapzen.commands.request_desk. Emails become their HMAC reference at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

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
from snapzen.cli.ledger_options import OptionalEmail, lock_seconds, not_done, read_email
from snapzen.support import clock, errors

if TYPE_CHECKING:
    from snapzen.commands.request_desk import Request
    from snapzen.support.settings import Settings

app = typer.Typer(invoke_without_command=True)


class ListFormat(StrEnum):
    table = "table"
    json = "json"


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


RequestId = Annotated[
    str,
    typer.Argument(metavar="REQUEST", help="The request id (req-…, see `ledger requests`)."),
]


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


@app.callback()
@handle_errors
def listing(
    ctx: typer.Context,
    fmt: Annotated[
        ListFormat | None, typer.Option("--format", help="table (default) or json.")
    ] = None,
    json_output: JsonFlag = False,
    config: ConfigOption = None,
) -> None:
    """Data-subject requests and their Art. 12(3) clock: list (default), open, pause, resume,
    extend, close.

    Without a command: every request, open ones first, by deadline; status (open, paused,
    closed), date received, deadline (moved by pauses and the extension), outcome, OVERDUE
    for an open request past its deadline and CLOSED LATE for one answered after it (for
    ever).

    Examples:

    ```
    $ snapzen ledger requests
    $ snapzen ledger requests --json
    $ snapzen ledger requests open --type erasure --received 2026-02-01 --email - < email.txt
    ```
    """
    if ctx.invoked_subcommand is not None:
        return
    from snapzen.commands import request_desk  # lazy: start-up time (sqlite_utils)

    as_json = pick_format(fmt, json_output, ListFormat.table, ListFormat.json) is ListFormat.json
    today = clock.now().date()
    found = request_desk.listing(settings_from(config), today)
    if as_json:
        echo_json([r.as_dict(today) for r in found])
        return
    for r in found:
        typer.echo(show(r, today))
    if not found:
        typer.echo("no requests recorded")


def _write(
    config: ConfigOption, actor: str | None, wait: bool, what: str,
    act: Callable[[Settings, str, float], Request],
) -> None:  # fmt: skip
    """One step under the writer lock, then the request as it now stands."""
    settings = settings_from(config)
    try:
        request = act(settings, actor_name(actor, settings), lock_seconds(wait))
    except errors.LockHeld:
        not_done(what)
    typer.echo(show(request, clock.now().date()))


@app.command("open")
@handle_errors
def open_(
    kind: Annotated[RequestType, typer.Option("--type", help="What the person asks for.")],
    received: Annotated[
        str,
        typer.Option(
            "--received", metavar="YYYY-MM-DD", help="Day the request arrived (YYYY-MM-DD)."
        ),
    ],
    email: OptionalEmail = None,
    case: Annotated[
        str | None, typer.Option("--case", metavar="ID", help="A SnapEngage case id.")
    ] = None,
    ticket: Annotated[
        int | None, typer.Option("--ticket", metavar="ID", help="A Zendesk ticket id.")
    ] = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
    config: ConfigOption = None,
) -> None:
    """Record a request as received: its deadline is one month later. Refused (exit 2) when
    received in the future or before the person's first chat in the ledger.

    Examples:

    ```
    $ snapzen ledger requests open --type access --received 2026-02-01 --case CASE_ID
    ```
    """
    from snapzen.commands import request_desk  # lazy: start-up time (sqlite_utils)

    given = read_email(email) if email is not None else None
    _write(
        config, actor, wait, "opening the request",
        lambda settings, who, seconds: request_desk.open_request(
            settings, kind=kind.value, received=received, email=given, case=case,
            ticket=ticket, actor=who, wait_seconds=seconds,
        ),
    )  # fmt: skip


def _step(
    request_id: str, step: str, details: dict[str, object], actor: str | None, wait: bool,
    config: ConfigOption,
) -> None:  # fmt: skip
    from snapzen.commands import request_desk  # lazy: start-up time (sqlite_utils)

    event = request_desk.STEPS[step]
    _write(
        config, actor, wait, event.replace("_", " "),
        lambda settings, who, seconds: request_desk.move(
            settings, request_id, event=event, details=details, actor=who, wait_seconds=seconds
        ),
    )  # fmt: skip


@app.command("pause")
@handle_errors
def pause(
    request_id: RequestId,
    reason: Annotated[PauseReason, typer.Option("--reason", help="What the person owes.")],
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Stop the clock while the person is asked for proof of identity or a clarification;
    the days paused are added to the deadline.

    Examples:

    ```
    $ snapzen ledger requests pause REQUEST_ID --reason identity
    ```
    """
    _step(request_id, "paused", {"reason": reason.value}, actor, wait, config)


@app.command("resume")
@handle_errors
def resume(
    request_id: RequestId,
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Restart a paused request's clock.

    Examples:

    ```
    $ snapzen ledger requests resume REQUEST_ID
    ```
    """
    _step(request_id, "resumed", {}, actor, wait, config)


@app.command("extend")
@handle_errors
def extend(
    request_id: RequestId,
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (told to the person).")
    ],
    months: Annotated[
        int, typer.Option("--months", min=1, max=2, metavar="N", help="Further months (1 or 2).")
    ] = 2,
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Art. 12(3): extend the deadline once, by up to two further months, before it passes;
    the reason is recorded (tell the person within the first month).

    Examples:

    ```
    $ snapzen ledger requests extend REQUEST_ID --months 2 --reason 'many requests at once'
    ```
    """
    if not reason.strip():
        raise errors.ConfigError("--reason is empty: the person must be told why")
    _step(request_id, "extended", {"reason": reason, "months": months}, actor, wait, config)


@app.command("close")
@handle_errors
def close(
    request_id: RequestId,
    outcome: Annotated[Outcome, typer.Option("--outcome", help="How it was answered.")],
    note: Annotated[
        str | None, typer.Option(metavar="TEXT", help="A note (no personal data).")
    ] = None,
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Record the answer: the clock stops for good; answered after the deadline, the
    request is CLOSED LATE for ever.

    Examples:

    ```
    $ snapzen ledger requests close REQUEST_ID --outcome provided
    ```
    """
    from snapzen.commands import request_desk  # lazy: start-up time (sqlite_utils)

    _write(
        config, actor, wait, "closing the request",
        lambda settings, who, seconds: request_desk.close(
            settings, request_id, outcome=outcome.value, note=note, actor=who,
            wait_seconds=seconds,
        ),
    )  # fmt: skip
