"""The `snapzen` command line: the top-level app, its global options, and every command group
registered in one place, one way (each module owns its ``app = typer.Typer()``; top-level
commands come from apps registered without a name).

Each command parses its arguments, calls one function in snapzen.commands and renders what it
returns; its examples are in its own docstring.
"""

from __future__ import annotations

from typing import Annotated

import typer

from snapzen.cli import init, ledger, retention, sandbox, status, sync
from snapzen.cli.common import GLOBAL, ConfigOption, reset_globals
from snapzen.cli.streams import closing_quietly

app = typer.Typer(
    name="snapzen",
    help="Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.",
    epilog="Shell completion: snapzen --install-completion (bash, zsh, fish, PowerShell).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:  # importlib.metadata: only for --version (it scans the installed packages)
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
        int,
        typer.Option(
            "--verbose", "-v", count=True, metavar="", show_default=False, help="Debug logs."
        ),
    ] = 0,
    quiet: Annotated[
        int,
        typer.Option(
            "--quiet",
            "-q",
            count=True,
            metavar="",
            show_default=False,
            help="Warnings and errors only; no progress output.",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            metavar="",
            help="Print the version and exit.",
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


# In the order `snapzen --help` lists them.
app.add_typer(sync.app)  # sync, run, backfill, retry, dismiss
app.add_typer(status.app)  # status
app.add_typer(init.app)  # init
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(ledger.app, name="ledger")
app.add_typer(retention.app, name="retention")


def main() -> None:
    with closing_quietly():  # `snapzen ledger list | head` ends quietly
        app()
