"""What a DPO records about data-subject requests, in three sub-groups of `snapzen ledger`:
`requests [open | pause | resume | extend | close]` (the Art. 12(3) clock), `notices [done]`
(the Art. 19 notices still owed) and `hold add | remove | list` (legal holds). Thin over
snapzen.commands.request_desk and .legal_holds; emails become their HMAC
reference at once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from snapzen import commands  # each module imported when first named (start-up time)
from snapzen.cli.common import (
    ActorOption,
    FormatOption,
    OptionalEmail,
    WaitOption,
    actor_name,
    command,
    lock_seconds,
    opt,
    read_email,
    say,
    settings_from,
    show,
)
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import clock

requests = typer.Typer(invoke_without_command=True)
notices = typer.Typer(invoke_without_command=True)
hold = typer.Typer()

RequestType = StrEnum("RequestType", "access erasure rectification restriction objection")
PauseReason = StrEnum("PauseReason", "identity clarification")
Outcome = StrEnum(
    "Outcome",
    "provided erased rectified restricted objection_upheld objection_rejected refused "
    "nothing_found withdrawn_by_person",
)
RequestId = Annotated[
    str,
    typer.Argument(metavar="REQUEST", help="The request id (req-…, see `ledger requests`)."),
]
Case = Annotated[str | None, opt("ID", "A SnapEngage case id.", "--case")]
Ticket = Annotated[int | None, opt("ID", "A Zendesk ticket id.", "--ticket")]


def say_request(request: commands.request_desk.Request) -> None:
    say(summaries.said("requests", found=[request], today=clock.now().date()))


@command(requests, group=True)
def requests_listing(
    ctx: typer.Context,
    fmt: FormatOption = None,
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
    today = clock.now().date()
    found = commands.request_desk.listing(settings_from(), today)
    lines = summaries.said("requests", found=found, today=today)
    show(lines, [r.as_dict(today) for r in found])


@command(requests, "open", refused="opening the request NOT done")
def open_(
    kind: Annotated[RequestType, typer.Option("--type", help="What the person asks for.")],
    received: Annotated[
        str, opt("YYYY-MM-DD", "Day the request arrived (YYYY-MM-DD).", "--received")
    ],
    email: OptionalEmail = None,
    case: Case = None,
    ticket: Ticket = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Record a request as received: its deadline is one month later. Refused (exit 2) when
    received in the future or before the person's first chat in the ledger.

    Examples:

    ```
    $ snapzen ledger requests open --type access --received 2026-02-01 --case CASE_ID
    ```
    """
    settings = settings_from()
    request = commands.request_desk.open_request(
        settings,
        kind=kind.value,
        received=received,
        email=read_email(email),
        case=case,
        ticket=ticket,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
    )
    say_request(request)


def _step(request_id: str, step: str, actor: str | None, wait: bool, **details: object) -> None:
    """Pause, resume, extend or close under the writer lock, then the request as it stands."""
    settings = settings_from()
    request = commands.request_desk.step(
        settings,
        request_id,
        commands.request_desk.STEPS[step],
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
        **details,
    )
    say_request(request)


@command(requests, "pause", refused="request paused NOT done")
def pause(
    request_id: RequestId,
    reason: Annotated[PauseReason, typer.Option("--reason", help="What the person owes.")],
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Stop the clock while the person is asked for proof of identity or a clarification;
    the days paused are added to the deadline.

    Examples:

    ```
    $ snapzen ledger requests pause REQUEST_ID --reason identity
    ```
    """
    _step(request_id, "paused", actor, wait, reason=reason.value)


@command(requests, "resume", refused="request resumed NOT done")
def resume(
    request_id: RequestId,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Restart a paused request's clock.

    Examples:

    ```
    $ snapzen ledger requests resume REQUEST_ID
    ```
    """
    _step(request_id, "resumed", actor, wait)


@command(requests, "extend", refused="request extended NOT done")
def extend(
    request_id: RequestId,
    reason: Annotated[str, opt("TEXT", "Why (told to the person).", "--reason")],
    months: Annotated[int, opt("N", "Further months (1 or 2).", "--months", min=1, max=2)] = 2,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Art. 12(3): extend the deadline once, by up to two further months, before it passes;
    the reason is recorded (tell the person within the first month).

    Examples:

    ```
    $ snapzen ledger requests extend REQUEST_ID --months 2 --reason 'many requests at once'
    ```
    """
    _step(request_id, "extended", actor, wait, reason=reason, months=months)


@command(requests, "close", refused="closing the request NOT done")
def close(
    request_id: RequestId,
    outcome: Annotated[Outcome, typer.Option("--outcome", help="How it was answered.")],
    note: Annotated[str | None, opt("TEXT", "A note (no personal data).")] = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Record the answer: the clock stops for good; answered after the deadline, the
    request is CLOSED LATE for ever.

    Examples:

    ```
    $ snapzen ledger requests close REQUEST_ID --outcome provided
    ```
    """
    _step(request_id, "closed", actor, wait, outcome=outcome.value, note=note)


@command(notices, group=True)
def notices_listing(
    ctx: typer.Context,
    fmt: FormatOption = None,
) -> None:
    """Art. 19 notices of erasures still owed to a recipient: list (default), done.

    Without a command: every recipient still to be told of an erasure (Art. 19): notice id,
    request, recipient, owed since, what to tell them. Record each with `ledger notices done`.

    Examples:

    ```
    $ snapzen ledger notices
    $ snapzen ledger notices --json
    ```
    """
    if ctx.invoked_subcommand is not None:
        return
    found = commands.request_desk.owed(settings_from())
    docs = [
        {
            "notice_id": n.notice_id,
            "request_id": n.request_id,
            "recipient": n.recipient,
            "owed_since": n.on,
            "what_to_tell": n.how,
        }
        for n in found
    ]
    show(summaries.said("notices", found=found), docs)


@command(notices, "done", refused="Art. 19 notice NOT done")
def done(
    notice_id: Annotated[
        str, typer.Argument(metavar="NOTICE", help="The notice id (ntc-…, `ledger notices`).")
    ],
    when: Annotated[str, opt("YYYY-MM-DD", "Day the recipient was told (YYYY-MM-DD, UTC).")],
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Record that the recipient of an open Art. 19 notice was told of the erasure (on
    --when): chained, and journalled so a restore keeps it.

    Examples:

    ```
    $ snapzen ledger notices done NOTICE_ID --when 2026-12-01
    ```
    """
    settings = settings_from()
    told = commands.request_desk.record_told(
        settings,
        notice_id,
        when=when,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
    )
    typer.echo(f"notice {notice_id}: {told.recipient} told on {told.on} (ledger {told.seq})")


Reason = Annotated[str, opt("TEXT", "Why (recorded in the chain).", "--reason")]


@hold.callback()
def holds() -> None:
    """Legal holds: keep tickets out of the sweep and erasure.

    Examples:

    ```
    $ snapzen ledger hold add --ticket 1234 --reason 'litigation 2026-07'
    $ snapzen ledger hold list
    ```
    """


def _change(
    add: bool,
    case: str | None,
    ticket: int | None,
    email: str | None,
    reason: str,
    actor: str | None,
    wait: bool,
) -> None:
    settings = settings_from()
    done = commands.legal_holds.change(
        settings,
        add=add,
        case=case,
        ticket=ticket,
        email=read_email(email),
        reason=reason,
        actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
    )
    say(summaries.said("hold_change", done=done, add=add))


@command(hold, "add", refused="hold change NOT done")
def hold_add(
    reason: Reason,
    case: Case = None,
    ticket: Ticket = None,
    email: OptionalEmail = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Place a legal hold (Art. 17(3)(e)) on a case, a ticket or all of a person's.

    Examples:

    ```
    $ snapzen ledger hold add --email - --reason 'litigation' < email.txt
    ```
    """
    _change(True, case, ticket, email, reason, actor, wait)


@command(hold, "remove", refused="hold change NOT done")
def hold_remove(
    reason: Reason,
    case: Case = None,
    ticket: Ticket = None,
    email: OptionalEmail = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
) -> None:
    """Lift a hold; the next sweep deletes what is due.

    Examples:

    ```
    $ snapzen ledger hold remove --ticket 1234 --reason 'case closed'
    ```
    """
    _change(False, case, ticket, email, reason, actor, wait)


@command(hold, "list")
def hold_list(fmt: FormatOption = None) -> None:
    """Active holds, oldest first.

    Examples:

    ```
    $ snapzen ledger hold list
    $ snapzen ledger hold list --json
    ```
    """
    active = commands.legal_holds.active(settings_from())  # after the usage error above
    show(summaries.said("holds", active=active), [h.as_dict() for h in active])
