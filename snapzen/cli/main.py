"""Top-level Typer app; sub-apps live in their own modules and are registered here."""

from __future__ import annotations

from typing import Annotated

import typer

from snapzen import errors
from snapzen.cli.common import ConfigOption, echo_json, handle_errors, settings_from

app = typer.Typer(
    name="snapzen",
    help="Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WaitOption = Annotated[
    bool,
    typer.Option("--wait", help="Wait for another running snapzen to finish instead of exiting 0."),
]


@app.command()
@handle_errors
def sync(
    config: ConfigOption = None,
    wait: WaitOption = False,
    widget: Annotated[
        list[str] | None, typer.Option("--widget", "-w", help="Only this widget (repeatable).")
    ] = None,
) -> None:
    """One pass: recover, fetch finished chats, decide consent, import to Zendesk, record.

    Exit codes: 0 done, 1 aborted (cursor not advanced), 2 configuration error,
    3 finished but some cases failed or are at risk of SnapEngage's deletion.
    """
    from snapzen import service

    settings = settings_from(config)
    result = service.sync(settings, wait=wait, widgets=widget or None)
    c = result.counts
    typer.echo(
        f"sync {result.run_id}: fetched {c.fetched}, created {c.created}, withheld {c.withheld}, "
        f"ignored {c.ignored}, failed {c.failed}, ambiguous {c.ambiguous}, "
        f"recovered {c.recovered}, ledger rows {c.ledger_rows}"
    )
    if result.at_risk:
        typer.echo(
            f"WARNING: {len(result.at_risk)} unsynced case(s) are older than "
            f"{settings.pipeline.deadline_days} days and at risk of SnapEngage's deletion",
            err=True,
        )
    if result.failed_total:
        typer.echo(f"{result.failed_total} case(s) failed; see `snapzen status`", err=True)
    raise typer.Exit(result.exit_code)


@app.command()
@handle_errors
def status(
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per widget: cursor, case counts, oldest unsynced age; failures; last run. No network.

    Exits 3 when cases are at risk of SnapEngage's deletion or have failed.
    """
    from snapzen.ledger.db import open_db
    from snapzen.pipeline import utcnow
    from snapzen.status import collect_status, status_exit_code

    settings = settings_from(config)
    if not settings.ledger.path.exists():
        raise errors.ConfigError(f"ledger database {settings.ledger.path} does not exist yet")
    db = open_db(settings.ledger.path)
    report = collect_status(db, settings, utcnow())
    if json_output:
        echo_json(report)
    else:
        from snapzen.cli.render import print_status

        print_status(report)
    raise typer.Exit(status_exit_code(report))


def _register_subapps() -> None:
    from snapzen.cli import sandbox as sandbox_cli

    app.add_typer(sandbox_cli.app, name="sandbox")


_register_subapps()


def main() -> None:
    app()
