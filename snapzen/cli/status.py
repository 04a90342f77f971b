"""`snapzen status`: per widget, cursor, case counts, oldest unsynced age; failures; last
run. Read from the database alone (no network, no lock)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from snapzen.cli.common import (
    ConfigOption,
    JsonFlag,
    command,
    echo_json,
    opt,
    pick_format,
    settings_from,
)
from snapzen.support import clock

app = typer.Typer()


class StatusFormat(StrEnum):
    table = "table"
    json = "json"
    prometheus = "prometheus"


@command(app)
def status(
    config: ConfigOption = None,
    json_output: JsonFlag = False,
    output_format: Annotated[
        StatusFormat | None,
        typer.Option("--format", help="table, json, or prometheus text (default: table)."),
    ] = None,
    check: Annotated[
        bool,
        opt("", "Health check: one line; exit 0 healthy, 1 unhealthy (no run completed within "
            "3 intervals, last run aborted, cases at risk, database unreadable).", "--check"),
    ] = False,
) -> None:  # fmt: skip
    """Per widget: cursor, case counts, oldest unsynced age; failures; last run. No network.

    Exits 3 when cases are at risk of SnapEngage's deletion or have failed.

    Examples:

    ```
    $ snapzen status
    $ snapzen status --check
    $ snapzen status --format prometheus
    ```
    """
    shown = pick_format(output_format, json_output, StatusFormat.table, StatusFormat.json)
    settings = settings_from(config)
    # The commands are imported here, not at the top: they import sqlite_utils and the
    # pipeline, start-up time every `snapzen` invocation would pay (test_startup_imports).
    from snapzen.commands.status import (
        check_health,
        read_status,
        render_prometheus,
        status_exit_code,
    )

    if check:
        health = check_health(settings.ledger.path, settings, clock.now())
        typer.echo(health.message if health.ok else f"unhealthy: {health.message}")
        raise typer.Exit(0 if health.ok else 1)
    report = read_status(settings, clock.now())
    if shown is StatusFormat.json:
        echo_json(report)
    elif shown is StatusFormat.prometheus:
        sys.stdout.write(render_prometheus(report))
    else:
        from snapzen.cli.render import print_status

        print_status(report)
        if report["at_risk"]:
            named = ", ".join(case["case_id"] for case in report["at_risk"][:10])
            typer.echo(f"at risk: {named}", err=True)
    raise typer.Exit(status_exit_code(report))
