"""`snapzen ledger notices [done]`: the Art. 19 notices still owed, and recording one given.
Thin over snapzen.commands.notice_desk."""

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
    handle_errors,
    opt,
    settings_from,
    wants_json,
)
from snapzen.cli.ledger_options import lock_seconds

app = typer.Typer(invoke_without_command=True)


@app.callback()
@handle_errors
def listing(
    ctx: typer.Context,
    fmt: FormatOption = None,
    json_output: JsonFlag = False,
    config: ConfigOption = None,
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
    from snapzen.commands import notice_desk  # lazy: start-up time (sqlite_utils)

    as_json = wants_json(fmt, json_output)
    found = notice_desk.owed(settings_from(config))
    if as_json:
        echo_json([
            {"notice_id": n.notice_id, "request_id": n.request_id, "recipient": n.recipient,
             "owed_since": n.on, "what_to_tell": n.how}
            for n in found
        ])  # fmt: skip
        return
    for n in found:
        typer.echo(f"{n.notice_id}  {n.request_id}  {n.recipient}  owed since {n.on}: {n.how}")
    if not found:
        typer.echo("no Art. 19 notice is owed")


@command(app, "done", refused="Art. 19 notice NOT done")
def done(
    notice_id: Annotated[
        str, typer.Argument(metavar="NOTICE", help="The notice id (ntc-…, `ledger notices`).")
    ],
    when: Annotated[str, opt("YYYY-MM-DD", "Day the recipient was told (YYYY-MM-DD, UTC).")],
    actor: ActorOption = None,
    wait: WaitOption = False,
    config: ConfigOption = None,
) -> None:
    """Record that the recipient of an open Art. 19 notice was told of the erasure (on
    --when): chained, and journalled so a restore keeps it.

    Examples:

    ```
    $ snapzen ledger notices done NOTICE_ID --when 2026-12-01
    ```
    """
    from snapzen.commands import notice_desk  # lazy: start-up time (sqlite_utils)

    settings = settings_from(config)
    told = notice_desk.record_told(
        settings, notice_id, when=when, actor=actor_name(actor, settings),
        wait_seconds=lock_seconds(wait),
    )  # fmt: skip
    typer.echo(f"notice {notice_id}: {told.recipient} told on {told.on} (ledger {told.seq})")
