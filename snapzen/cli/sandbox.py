"""``snapzen sandbox``: run and inspect the loopback emulator of both APIs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

# Only the (dataclass) config is imported here, for the option defaults. The server (werkzeug,
# faker), requests and the settings (pydantic-settings) are imported inside the commands:
# every `snapzen` invocation imports this module to register them, so they would cost every
# cron run start-up time.
from snapzen.sandbox.config import SandboxConfig

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


def _write_ready_file(path: Path, sb: Sandbox) -> None:
    # Write then rename, so a script polling for the file never reads half a JSON document.
    # 0600: it holds the sandbox's credentials (SNAPZEN_* settings).
    from snapzen.support.atomic import write_private

    tmp = path.with_name(path.name + ".tmp")
    write_private(tmp, json.dumps({"base_url": sb.base_url, "env": sb.env()}, indent=2))
    tmp.replace(path)


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
        _detach(options, flags, ready_file)
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

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _sandbox_class()(cfg) as sb:
            typer.echo(f"sandbox listening on {sb.base_url}")
            for name, value in sb.env().items():
                typer.echo(f"export {name}={shlex.quote(value)}")
            typer.echo(NEXT_STEPS)
            sys.stdout.flush()
            if ready_file is not None:
                _write_ready_file(ready_file, sb)
            stop.wait(timeout=duration)
            typer.echo("sandbox stopping", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _detach(options: dict[str, object], flags: list[str], ready_file: Path | None) -> None:
    """Start ``sandbox serve`` (same options) in its own session and wait for its ready file:
    a script that goes on at once would otherwise read a file that is not there yet."""
    import shlex
    import subprocess
    import tempfile
    import time

    if ready_file is None:
        ready_file = Path(tempfile.mkdtemp(prefix="snapzen-sandbox-")) / "ready.json"
    ready_file.unlink(missing_ok=True)  # never mistake an earlier run's file for this one
    args = [a for name, value in options.items() if value is not None for a in (name, str(value))]
    log_path = ready_file.with_name(ready_file.name + ".log")
    from snapzen.support.atomic import open_private_binary

    with open_private_binary(log_path) as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "snapzen", "sandbox", "serve", *args, *flags,
             "--ready-file", str(ready_file)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            if child.poll() is None:
                child.terminate()
            typer.echo(f"sandbox did not start; see {log_path}", err=True)
            raise typer.Exit(1)
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text())
    typer.echo(f"# sandbox listening on {ready['base_url']} (pid {child.pid}, log {log_path})")
    for name, value in ready["env"].items():
        typer.echo(f"export {name}={shlex.quote(str(value))}")
    typer.echo(f"SANDBOX_PID={child.pid}")
    typer.echo(NEXT_STEPS)


def _default_url() -> str | None:
    url = os.environ.get("SNAPZEN_SANDBOX_URL")
    if url:
        return url
    zendesk = os.environ.get("SNAPZEN_ZENDESK__BASE_URL", "")
    return zendesk.removesuffix("/zendesk") if zendesk.endswith("/zendesk") else None


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
    import requests  # lazy: start-up time

    if what not in ("state", "tickets", "truth"):
        typer.echo("--what must be one of: state, tickets, truth", err=True)
        raise typer.Exit(2)
    base = url or _default_url()
    if not base:
        typer.echo("no sandbox URL: pass --url or set SNAPZEN_SANDBOX_URL", err=True)
        raise typer.Exit(2)
    try:
        response = requests.get(f"{base.rstrip('/')}/_sandbox/{what}", timeout=30)
        response.raise_for_status()
    except requests.RequestException as exc:
        typer.echo(f"cannot read the sandbox at {base}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))


def _sandbox_class() -> type[Sandbox]:
    """The server, imported on use (werkzeug and faker cost start-up time and are an extra)."""
    from snapzen.support.errors import ConfigError

    try:
        from snapzen.sandbox.server import Sandbox
    except ConfigError as exc:  # the `sandbox` extra is not installed
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return Sandbox
