"""`snapzen ledger reconcile`: compare the ledger with Zendesk (read-only there) and report
what disagrees, each finding with what to do. Thin over snapzen.commands.reconcile_check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    SummaryOption,
    actor_name,
    command,
    echo_json,
    opt,
    say,
    settings_from,
    wants_json,
)
from snapzen.cli.tables import print_rows

app = typer.Typer()


@command(app)
def reconcile(
    config: ConfigOption = None,
    since: Annotated[
        datetime | None,
        opt("YYYY-MM-DD", "Read Zendesk's tickets changed since this UTC day (default: a day "
            "before the ledger's first chat or run).", formats=["%Y-%m-%d"]),
    ] = None,
    max_requests: Annotated[
        int, opt("N", "At most this many export requests (1,000 tickets each).", min=1)
    ] = 1000,
    actor: ActorOption = None,
    fmt: SummaryOption = None,
    json_output: JsonFlag = False,
) -> None:  # fmt: skip
    """Compare the ledger with Zendesk (read-only there) and report tickets missing,
    unknown, duplicated or pointing at the wrong case, each with what to do. Reads Zendesk's
    incremental export (1,000 tickets a request, 10 requests a minute) and records the check
    in the ledger (event `reconciled`), which `status` shows. Exit 0 when they agree, 3 with
    findings. Run it weekly.

    Examples:

    ```
    $ snapzen ledger reconcile
    $ snapzen ledger reconcile --since 2026-01-01 --json
    ```
    """
    from snapzen.commands import summaries
    from snapzen.commands.reconcile_check import reconcile_check  # lazy: start-up time

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config)
    check = reconcile_check(
        settings, actor=actor_name(actor, settings), since=since.date() if since else None,
        max_requests=max_requests,
    )  # fmt: skip
    report = check.as_dict()
    if as_json:
        echo_json(report)
        raise typer.Exit(check.exit_code)
    say(summaries.reconcile_lines(report))
    if report["found"]:
        rows = [{**f, "ticket_ids": ", ".join(map(str, f["ticket_ids"]))} for f in report["found"]]
        print_rows(rows, ["kind", "case_id", "ticket_ids", "detail", "suggestion"], "findings")
    raise typer.Exit(check.exit_code)
