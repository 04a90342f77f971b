"""``snapzen sandbox``: run and inspect the loopback emulator of both APIs."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer

# Only the (dataclass) config is imported here, for the option defaults. The server (werkzeug,
# faker), requests and the settings (pydantic-settings) are imported inside the commands:
# every `snapzen` invocation imports this module to register them, so they would cost every
# cron run start-up time.
from snapzen.sandbox.config import SandboxConfig
from snapzen.support.errors import ConfigError

if TYPE_CHECKING:
    from snapzen.sandbox.server import Sandbox

app = typer.Typer(
    help="Run and inspect the loopback emulator of the SnapEngage and Zendesk APIs.",
    no_args_is_help=True,
)

_DEFAULTS = SandboxConfig()
# A shell comment, so the output can still be eval'ed.
NEXT_STEPS = (
    "# next: export SNAPZEN_LEDGER__PATH=/tmp/snapzen.db SNAPZEN_LEDGER__KEY=<32+ random chars>;"
    " snapzen init; snapzen sync"
)


@app.command()
def serve(
    chats: Annotated[
        int, typer.Option(metavar="N", help="Number of synthetic chats to generate.")
    ] = (_DEFAULTS.chats),
    widgets: Annotated[
        int, typer.Option(metavar="N", help="Number of SnapEngage widgets.")
    ] = _DEFAULTS.widgets,
    days: Annotated[
        int, typer.Option(metavar="N", help="Spread chats over this many past days.")
    ] = (_DEFAULTS.days),
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed for the synthetic data and faults.")
    ] = (_DEFAULTS.seed),
    eu_share: Annotated[
        float, typer.Option(metavar="SHARE", help="Share of visitors in the EEA/UK (0-1).")
    ] = _DEFAULTS.eu_share,
    consent_share: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of chats with accepted gdpr_consent (0-1)."),
    ] = _DEFAULTS.consent_share,
    latency_ms: Annotated[
        int, typer.Option(metavar="MS", help="Latency added to every API request.")
    ] = (_DEFAULTS.latency_ms),
    rate_limit: Annotated[
        int,
        typer.Option(metavar="N", help="Zendesk requests allowed per rate window (per minute)."),
    ] = _DEFAULTS.rate_limit_per_minute,
    rate_window: Annotated[
        float, typer.Option(metavar="SECONDS", help="Length of the rate-limit window in seconds.")
    ] = _DEFAULTS.rate_window_seconds,
    job_seconds: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Time a Zendesk job takes from queued to completed."),
    ] = _DEFAULTS.job_seconds,
    max_jobs: Annotated[
        int,
        typer.Option(metavar="N", help="Queued/working Zendesk jobs allowed before TooManyJobs."),
    ] = _DEFAULTS.max_jobs_in_flight,
    page_size: Annotated[int, typer.Option(metavar="N", help="SnapEngage cases per page.")] = (
        _DEFAULTS.page_size
    ),
    fault_rate: Annotated[
        float,
        typer.Option(
            metavar="SHARE", help="Share of API requests that fail (500/502/503/timeout/bad JSON)."
        ),
    ] = _DEFAULTS.fault_rate,
    timeout_share: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of injected faults that are slow timeouts."),
    ] = _DEFAULTS.timeout_share,
    fault_timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Seconds a 'timeout' fault stalls before answering."),
    ] = _DEFAULTS.fault_timeout_seconds,
    long_transcripts: Annotated[
        int, typer.Option(metavar="N", help="Huge hostile transcripts to include (0-2).")
    ] = _DEFAULTS.long_transcripts,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on.")
    ] = _DEFAULTS.host,
    port: Annotated[
        int, typer.Option(metavar="N", help="Port to listen on; 0 picks a free port.")
    ] = 0,
    allow_nonlocal: Annotated[
        bool, typer.Option(metavar="", help="Allow listening on a non-loopback interface.")
    ] = False,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Write {base_url, env} as JSON here once the server is listening."
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Stop after this many seconds (default: run until SIGINT/SIGTERM).",
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            metavar="",
            help="Serve in the background: return once it listens (the --ready-file is written "
            "first) and print `export` lines for eval, plus SANDBOX_PID to stop it with kill.",
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
    if detach:
        options = {
            "--chats": chats, "--widgets": widgets, "--days": days, "--seed": seed,
            "--eu-share": eu_share, "--consent-share": consent_share,
            "--latency-ms": latency_ms, "--rate-limit": rate_limit,
            "--rate-window": rate_window, "--job-seconds": job_seconds,
            "--max-jobs": max_jobs, "--page-size": page_size, "--fault-rate": fault_rate,
            "--timeout-share": timeout_share, "--fault-timeout": fault_timeout,
            "--long-transcripts": long_transcripts, "--host": host, "--port": port,
            "--duration": duration,
        }  # fmt: skip
        flags = ["--allow-nonlocal"] if allow_nonlocal else []
        given = [(name, str(value)) for name, value in options.items() if value is not None]
        _detach([word for pair in given for word in pair] + flags, ready_file)
        return
    from snapzen.support.settings import is_loopback  # lazy: start-up time (pydantic-settings)

    if not is_loopback(host) and not allow_nonlocal:
        # The sandbox serves fake credentials and personal-looking data with no real auth.
        typer.echo(
            f"refusing to listen on non-loopback host {host!r}; pass --allow-nonlocal to override",
            err=True,
        )
        raise typer.Exit(2)
    try:
        cfg = SandboxConfig(
            chats=chats,
            widgets=widgets,
            days=days,
            seed=seed,
            eu_share=eu_share,
            consent_share=consent_share,
            latency_ms=latency_ms,
            rate_limit_per_minute=rate_limit,
            rate_window_seconds=rate_window,
            job_seconds=job_seconds,
            max_jobs_in_flight=max_jobs,
            page_size=page_size,
            fault_rate=fault_rate,
            timeout_share=timeout_share,
            fault_timeout_seconds=fault_timeout,
            long_transcripts=long_transcripts,
            host=host,
            port=port,
        )
    except ValueError as exc:
        typer.echo(f"invalid sandbox settings: {exc}", err=True)
        raise typer.Exit(2) from exc

    def listening(sb: Sandbox) -> None:
        typer.echo(f"sandbox listening on {sb.base_url}")
        for name, value in sb.env().items():
            typer.echo(f"export {name}={shlex.quote(value)}")
        typer.echo(NEXT_STEPS)
        sys.stdout.flush()

    _control().serve_until_stopped(
        cfg, duration=duration, ready_file=ready_file, on_listening=listening
    )
    typer.echo("sandbox stopping", err=True)


def _detach(args: list[str], ready_file: Path | None) -> None:
    """``sandbox serve --detach``: start it in the background and print how to use it."""
    control = _control()
    try:
        started = control.detach(args, ready_file)
    except control.StartFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"# sandbox listening on {started.base_url} (pid {started.pid}, log {started.log_path})"
    )
    for name, value in started.env.items():
        typer.echo(f"export {name}={shlex.quote(str(value))}")
    typer.echo(f"SANDBOX_PID={started.pid}")
    typer.echo(NEXT_STEPS)


@app.command()
def dump(
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Sandbox base URL (default: $SNAPZEN_SANDBOX_URL, or derived from "
            "$SNAPZEN_ZENDESK__BASE_URL).",
        ),
    ] = None,
    what: Annotated[
        str,
        typer.Option(metavar="state|tickets|truth", help="What to print: state, tickets or truth."),
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
        typer.echo("--what must be one of: state, tickets, truth", err=True)
        raise typer.Exit(2)
    control = _control()
    base = url or control.default_url()
    if not base:
        typer.echo("no sandbox URL: pass --url or set SNAPZEN_SANDBOX_URL", err=True)
        raise typer.Exit(2)
    try:
        found = control.inspect(base, what)
    except control.Unreadable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(found, indent=2, ensure_ascii=False))


def _control() -> ModuleType:
    """snapzen.sandbox.control, imported on use: the server (werkzeug, faker) and requests
    cost start-up time every `snapzen` invocation would pay, and are an extra."""
    try:
        from snapzen.sandbox import control
    except ConfigError as exc:  # the `sandbox` extra is not installed
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return control
