"""``snapzen sandbox``: run and inspect the loopback emulator of both APIs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Annotated

import typer

from snapzen.cli.common import command, opt, say
from snapzen.commands import summaries  # light: jinja2 is imported on use

# Only the (dataclass) config is imported here, for the option defaults; the server builds it
# from the options (snapzen.sandbox.server.serve). The server (werkzeug, faker), requests and
# the settings (pydantic-settings) are imported by the commands that use them: every
# `snapzen` invocation imports this module to register them, so they would cost every cron
# run start-up time; and they are an extra (without it, the import is a ConfigError naming
# the extra: exit 2).
from snapzen.sandbox.config import SandboxConfig
from snapzen.support.errors import ConfigError

if TYPE_CHECKING:
    from snapzen.sandbox.server import Sandbox

app = typer.Typer(
    help="Run and inspect the loopback emulator of the SnapEngage and Zendesk APIs.",
    no_args_is_help=True,
)

_D = SandboxConfig  # its defaults, for the options' (a dataclass: class attributes)
N, SHARE, SECONDS = "N", "SHARE", "SECONDS"


@command(app, config=False)
def serve(
    ctx: typer.Context,
    chats: Annotated[int, opt(N, "Number of synthetic chats to generate.")] = _D.chats,
    widgets: Annotated[int, opt(N, "Number of SnapEngage widgets.")] = _D.widgets,
    days: Annotated[int, opt(N, "Spread chats over this many past days.")] = _D.days,
    seed: Annotated[int, opt(N, "Seed for the synthetic data and faults.")] = _D.seed,
    eu_share: Annotated[float, opt(SHARE, "Share of visitors in the EEA/UK (0-1).")] = _D.eu_share,
    consent_share: Annotated[
        float, opt(SHARE, "Share of chats with accepted gdpr_consent (0-1).")
    ] = _D.consent_share,
    latency_ms: Annotated[int, opt("MS", "Latency added to every API request.")] = _D.latency_ms,
    rate_limit: Annotated[
        int, opt(N, "Zendesk requests allowed per rate window (per minute).")
    ] = _D.rate_limit_per_minute,
    rate_window: Annotated[
        float, opt(SECONDS, "Length of the rate-limit window in seconds.")
    ] = _D.rate_window_seconds,
    job_seconds: Annotated[
        float, opt(SECONDS, "Time a Zendesk job takes from queued to completed.")
    ] = _D.job_seconds,
    max_jobs: Annotated[
        int, opt(N, "Queued/working Zendesk jobs allowed before TooManyJobs.")
    ] = _D.max_jobs_in_flight,
    page_size: Annotated[int, opt(N, "SnapEngage cases per page.")] = _D.page_size,
    fault_rate: Annotated[
        float, opt(SHARE, "Share of API requests that fail (500/502/503/timeout/bad JSON).")
    ] = _D.fault_rate,
    timeout_share: Annotated[
        float, opt(SHARE, "Share of injected faults that are slow timeouts.")
    ] = _D.timeout_share,
    fault_timeout: Annotated[
        float, opt(SECONDS, "Seconds a 'timeout' fault stalls before answering.")
    ] = _D.fault_timeout_seconds,
    long_transcripts: Annotated[
        int, opt(N, "Huge hostile transcripts to include (0-2).")
    ] = _D.long_transcripts,
    host: Annotated[str, opt("HOST", "Interface to listen on.")] = _D.host,
    port: Annotated[int, opt(N, "Port to listen on; 0 picks a free port.")] = 0,
    allow_nonlocal: Annotated[
        bool, opt("", "Allow listening on a non-loopback interface.")
    ] = False,
    ready_file: Annotated[
        Path | None, opt("FILE", "Write {base_url, env} as JSON here once the server is listening.")
    ] = None,
    duration: Annotated[
        float | None,
        opt(SECONDS, "Stop after this many seconds (default: run until SIGINT/SIGTERM)."),
    ] = None,
    detach: Annotated[
        bool,
        opt(
            "",
            "Serve in the background: return once it listens (the --ready-file is written "
            "first) and print `export` lines for eval, plus SANDBOX_PID to stop it with kill.",
            "--detach",
        ),
    ] = False,
) -> None:
    """Start the sandbox and print its URL plus `export` lines that point snapzen at it.

    Examples:

    ```
    $ snapzen sandbox serve --ready-file /tmp/sandbox.env
    $ eval "$(snapzen sandbox serve --detach --ready-file /tmp/sandbox.json)"
    ```
    """
    if detach:  # the same options, given to a `sandbox serve` in the background
        args = [
            f"--{name.replace('_', '-')}" + ("" if value is True else f"={value}")
            for name, value in ctx.params.items()
            if name not in ("ready_file", "detach") and value is not None and value is not False
        ]
        _detach(args, ready_file)
        return

    def listening(sb: Sandbox) -> None:
        say(summaries.said("sandbox_env", url=sb.base_url, env=sb.env(), pid=None, quote=quote))
        sys.stdout.flush()

    from snapzen.sandbox import server as control  # on use: see the imports above

    control.serve(ctx.params, listening)
    typer.echo("sandbox stopping", err=True)


def _detach(args: list[str], ready_file: Path | None) -> None:
    """``sandbox serve --detach``: start it in the background and print how to use it."""
    from snapzen.sandbox import server as control  # on use: see the imports above

    try:
        started = control.detach(args, ready_file)
    except control.StartFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    shown = {"url": started.base_url, "pid": started.pid, "log": started.log_path}
    say(summaries.said("sandbox_env", env=started.env, quote=quote, **shown))


@command(app, config=False)
def dump(
    url: Annotated[
        str | None,
        opt(
            "URL",
            "Sandbox base URL (default: $SNAPZEN_SANDBOX_URL, or derived from "
            "$SNAPZEN_ZENDESK__BASE_URL).",
        ),
    ] = None,
    what: Annotated[
        str, opt("state|tickets|truth", "What to print: state, tickets or truth.")
    ] = "state",
) -> None:
    """Print the inspection JSON (state, tickets or truth) of a running sandbox.

    Examples:

    ```
    $ snapzen sandbox dump --what tickets
    $ snapzen sandbox dump --url URL
    ```
    """
    if what not in ("state", "tickets", "truth"):
        raise ConfigError("--what must be one of: state, tickets, truth")
    from snapzen.sandbox import server as control  # on use: see the imports above

    base = url or control.default_url()
    if not base:
        raise ConfigError("no sandbox URL: pass --url or set SNAPZEN_SANDBOX_URL")
    try:
        found = control.inspect(base, what)
    except control.Unreadable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(found, indent=2, ensure_ascii=False))
