"""Top-level Typer app; sub-apps live in their own modules and are registered here."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from snapzen.cli.common import (
    GLOBAL,
    ActorOption,
    ConfigOption,
    JsonFlag,
    SummaryFormatOption,
    WaitOption,
    actor_name,
    echo_json,
    handle_errors,
    known_widgets,
    pass_summary,
    pick_format,
    reset_globals,
    settings_from,
    summary_json,
)
from snapzen.cli.helptext import SnapzenGroup


class StatusFormat(StrEnum):
    table = "table"
    json = "json"
    prometheus = "prometheus"


app = typer.Typer(
    name="snapzen",
    cls=SnapzenGroup,
    help="Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.",
    epilog="Shell completion: snapzen --install-completion (bash, zsh, fish, PowerShell).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            shown = version("snapzen")
        except PackageNotFoundError:  # run from a source tree without installing
            from snapzen import __version__ as shown
        typer.echo(f"snapzen {shown}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, show_default=False, help="Debug logs.")
    ] = 0,
    quiet: Annotated[
        int,
        typer.Option(
            "--quiet",
            "-q",
            count=True,
            show_default=False,
            help="Warnings and errors only; no progress output.",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.

    Options given here apply to every command; a command's own --config wins.
    """
    if verbose and quiet:
        raise typer.BadParameter("give -v or -q, not both", param_hint="-v/-q")
    GLOBAL.config = config
    GLOBAL.verbosity = verbose - quiet
    ctx.call_on_close(reset_globals)


@app.command()
@handle_errors
def sync(
    config: ConfigOption = None,
    wait: WaitOption = False,
    widget: Annotated[
        list[str] | None, typer.Option("--widget", "-w", help="Only this widget (repeatable).")
    ] = None,
    fmt: SummaryFormatOption = None,
    json_output: JsonFlag = False,
    actor: ActorOption = None,
) -> None:
    """One pass: recover, fetch finished chats, decide consent, import to Zendesk, record.

    Exit codes: 0 done, 1 aborted (cursor not advanced), 2 configuration error,
    3 finished but some cases failed or are at risk of SnapEngage's deletion.
    """
    from snapzen.commands import service
    from snapzen.support.settings import Needs

    as_json = summary_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    result = service.sync(
        settings,
        wait=wait,
        widgets=known_widgets(settings, widget),
        actor=actor_name(actor, settings),
    )
    c = result.counts
    if as_json:
        echo_json(pass_summary(result))
    else:
        typer.echo(
            f"sync {result.run_id}: fetched {c.fetched}, created {c.created}, "
            f"withheld {c.withheld}, ignored {c.ignored}, failed {c.failed}, "
            f"ambiguous {c.ambiguous}, recovered {c.recovered}, ledger rows {c.ledger_rows}"
        )
    from snapzen.ledger.derogations import warning_line

    for recipient, count in result.derogations.items():
        typer.echo(warning_line(recipient, count), err=True)
    if result.at_risk:
        named = ", ".join(r["case_id"] for r in result.at_risk[:10])
        more = f" (+{len(result.at_risk) - 10} more)" if len(result.at_risk) > 10 else ""
        typer.echo(
            f"WARNING: {len(result.at_risk)} unsynced case(s) are older than "
            f"{settings.pipeline.deadline_days} days and at risk of SnapEngage's deletion: "
            f"{named}{more}",
            err=True,
        )
    if result.failed_total:
        typer.echo(f"{result.failed_total} case(s) failed; see `snapzen status`", err=True)
    raise typer.Exit(result.exit_code)


@app.command()
@handle_errors
def status(
    config: ConfigOption = None,
    json_output: JsonFlag = False,
    output_format: Annotated[
        StatusFormat | None,
        typer.Option("--format", help="table, json, or prometheus text (default: table)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Health check: one line; exit 0 healthy, 1 unhealthy (no run completed within "
            "3 intervals, last run aborted, cases at risk, database unreadable).",
        ),
    ] = False,
) -> None:
    """Per widget: cursor, case counts, oldest unsynced age; failures; last run. No network.

    Exits 3 when cases are at risk of SnapEngage's deletion or have failed.
    """
    from snapzen.sync.pipeline import utcnow

    shown = pick_format(output_format, json_output, StatusFormat.table, StatusFormat.json)
    settings = settings_from(config)
    if check:
        from snapzen.commands.metrics import check_health

        health = check_health(settings.ledger.path, settings, utcnow())
        typer.echo(health.message if health.ok else f"unhealthy: {health.message}")
        raise typer.Exit(0 if health.ok else 1)

    from snapzen.commands.status import collect_status, status_exit_code
    from snapzen.ledger.db import open_ledger
    from snapzen.sync.pipeline import log_at_risk

    db = open_ledger(settings.ledger, read_only=True)  # a reader: no lock, no write
    report = collect_status(db, settings, utcnow())
    log_at_risk(report["at_risk"])
    if shown is StatusFormat.json:
        echo_json(report)
    elif shown is StatusFormat.prometheus:
        from snapzen.commands.metrics import render_prometheus

        sys.stdout.write(render_prometheus(report))
    else:
        from snapzen.cli.render import print_status

        print_status(report)
        if report["at_risk"]:
            named = ", ".join(case["case_id"] for case in report["at_risk"][:10])
            typer.echo(f"at risk: {named}", err=True)
    raise typer.Exit(status_exit_code(report))


def _register_subapps() -> None:
    from snapzen.cli import ledger as ledger_cli
    from snapzen.cli import retention as retention_cli
    from snapzen.cli import sandbox as sandbox_cli

    app.add_typer(sandbox_cli.app, name="sandbox")
    app.add_typer(ledger_cli.app, name="ledger")
    from snapzen.cli import ledger_rights

    ledger_rights.register(ledger_cli.app)  # access, requests, hold, reapply-erasures
    from snapzen.cli import ops

    ops.register(app)  # after `ledger`: it adds `ledger backup` to that group
    from snapzen.cli import lifecycle

    lifecycle.register(app)  # after `ledger`: it adds `ledger restore` to that group
    app.add_typer(retention_cli.app, name="retention")


_register_subapps()


def main() -> None:
    app()
