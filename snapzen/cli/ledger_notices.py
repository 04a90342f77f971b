"""`snapzen ledger notices [done]`: the Art. 19 notices still owed, and recording one given.

Thin over snapzen.commands.art19 (writing, under the writer lock) and snapzen.ledger.notices
(the listing)."""

from __future__ import annotations

from datetime import date
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
)
from snapzen.cli.ledger_rights import FormatOpt, lock_seconds, not_done
from snapzen.support import clock, errors


def register(app: typer.Typer) -> None:
    """Add the `notices` group to the `ledger` group."""
    from snapzen.cli import ledger as base

    group = typer.Typer(
        help="Art. 19 notices of erasures still owed to a recipient: list (default), done.",
        invoke_without_command=True,
    )
    app.add_typer(group, name="notices")

    @group.callback()
    @handle_errors
    def listing(
        ctx: typer.Context,
        fmt: FormatOpt = None,
        json_output: JsonFlag = False,
        config: ConfigOption = None,
    ) -> None:
        """Every recipient still to be told of an erasure (Art. 19): notice id, request,
        recipient, owed since, what to tell them. Record each with `ledger notices done`."""
        if ctx.invoked_subcommand is not None:
            return
        from snapzen.cli.ledger_rights import _json
        from snapzen.ledger import notices

        as_json = _json(fmt, json_output)
        db = base._open_read(base._settings(config))
        found = notices.open_notices(db.conn)
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

    @group.command("done")
    @handle_errors
    def done(
        notice_id: Annotated[str, typer.Argument(help="The notice id (ntc-…, `ledger notices`).")],
        when: Annotated[
            str, typer.Option("--when", help="Day the recipient was told (YYYY-MM-DD, UTC).")
        ],
        actor: ActorOption = None,
        wait: WaitOption = False,
        config: ConfigOption = None,
    ) -> None:
        """Record that the recipient of an open Art. 19 notice was told of the erasure (on
        --when): chained, and journalled so a restore keeps it."""
        from snapzen.commands import art19
        from snapzen.support.settings import require_ledger_key

        try:
            day = date.fromisoformat(when)
        except ValueError:
            raise errors.ConfigError(f"--when {when!r} is not a date (YYYY-MM-DD)") from None
        settings = base._settings(config)
        try:
            with base._locked(settings, lock_seconds(wait, None)) as db:
                told = art19.mark_told(
                    db, notice_id, when=day, actor=actor_name(actor, settings),
                    now=clock.utcnow(), journal=settings.ledger.erasure_journal_path,
                    journal_key=require_ledger_key(settings),
                )  # fmt: skip
        except errors.LockHeld:
            not_done("Art. 19 notice")
        typer.echo(f"notice {notice_id}: {told.recipient} told on {told.on} (ledger {told.seq})")
