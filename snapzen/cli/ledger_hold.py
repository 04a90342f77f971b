"""`snapzen ledger hold add | remove | list`: legal holds. Thin over
snapzen.commands.legal_holds."""

from __future__ import annotations

from typing import Annotated

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
from snapzen.cli.ledger_options import OptionalEmail, lock_seconds, read_email

app = typer.Typer(
    help="Legal holds: keep tickets out of the sweep and erasure.\n\n"
    "Examples:\n\n```\n"
    "$ snapzen ledger hold add --ticket 1234 --reason 'litigation 2026-07'\n"
    "$ snapzen ledger hold list\n"
    "```",
)

CaseOpt = Annotated[str | None, opt("ID", "A SnapEngage case id.", "--case")]
TicketOpt = Annotated[int | None, opt("ID", "A Zendesk ticket id.", "--ticket")]
Reason = Annotated[str, opt("TEXT", "Why (recorded in the chain).", "--reason")]


def _change(
    add: bool, case: str | None, ticket: int | None, email: str | None, reason: str,
    actor: str | None, wait: bool, config: ConfigOption,
) -> None:  # fmt: skip
    from snapzen.commands import legal_holds  # lazy: start-up time (sqlite_utils)

    settings = settings_from(config)
    done = legal_holds.change(
        settings, add=add, case=case, ticket=ticket,
        email=read_email(email) if email is not None else None, reason=reason,
        actor=actor_name(actor, settings), wait_seconds=lock_seconds(wait),
    )  # fmt: skip
    if done.row is None:
        typer.echo(
            f"{done.target}: {'already held' if add else 'no active hold'}; nothing recorded"
        )
    else:
        verb = "added" if add else "removed"
        typer.echo(f"{done.target}: hold {verb} (ledger seq {done.row['seq']})")


@command(app, "add", refused="hold change NOT done")
def hold_add(
    reason: Reason, case: CaseOpt = None, ticket: TicketOpt = None, email: OptionalEmail = None,
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Place a legal hold (Art. 17(3)(e)) on a case, a ticket or all of a person's.

    Examples:

    ```
    $ snapzen ledger hold add --email - --reason 'litigation' < email.txt
    ```
    """
    _change(True, case, ticket, email, reason, actor, wait, config)


@command(app, "remove", refused="hold change NOT done")
def hold_remove(
    reason: Reason, case: CaseOpt = None, ticket: TicketOpt = None, email: OptionalEmail = None,
    actor: ActorOption = None, wait: WaitOption = False, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Lift a hold; the next sweep deletes what is due.

    Examples:

    ```
    $ snapzen ledger hold remove --ticket 1234 --reason 'case closed'
    ```
    """
    _change(False, case, ticket, email, reason, actor, wait, config)


@command(app, "list")
def hold_list(
    fmt: FormatOption = None, json_output: JsonFlag = False, config: ConfigOption = None
) -> None:
    """Active holds, oldest first.

    Examples:

    ```
    $ snapzen ledger hold list
    $ snapzen ledger hold list --json
    ```
    """
    from snapzen.commands import legal_holds  # lazy: start-up time (sqlite_utils)

    as_json = wants_json(fmt, json_output)
    active = legal_holds.active(settings_from(config))  # after the usage error above
    if as_json:
        echo_json([h.as_dict() for h in active])
        return
    for h in active:
        typer.echo(f"{h.target}  since {h.since}  reason: {h.reason}")
    if not active:
        typer.echo("no active holds")
