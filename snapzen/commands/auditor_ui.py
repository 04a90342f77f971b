"""`snapzen ledger serve`: a read-only Datasette over a sanitized snapshot of the ledger,
stopped with us, and read-only at the HTTP door.

Datasette runs as a child process. On SIGTERM (docker stop, systemd, kill) or SIGINT
(Ctrl-C) we stop the child (SIGTERM, then SIGKILL after STOP_GRACE_SECONDS, or at once on a
second signal), wait for it, and return normally (exit 0), so the temporary snapshot
directory is removed by its context manager instead of being left behind with the child
still serving it.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from snapzen.commands.run import stop_on_signals
from snapzen.ledger.evidence import web
from snapzen.ledger.store.db import open_ledger
from snapzen.support.atomic import private_dir, write_private
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings

# A Datasette plugin (loaded with --plugins-dir) answering 405 to anything but a read. An
# immutable database refuses writes anyway, but Datasette answers a POST to a table with an
# AssertionError and a logged traceback; this answers before Datasette sees the request.
READ_ONLY_PLUGIN = '''"""snapzen: the auditors' UI is read-only; writes are refused at the door."""

from datasette import hookimpl

READS = ("GET", "HEAD", "OPTIONS")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def read_only(scope, receive, send):
            if scope["type"] == "http" and scope["method"] not in READS:
                await send({
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"allow", b"GET, HEAD, OPTIONS"),
                    ],
                })
                await send({
                    "type": "http.response.body",
                    "body": b"405: this ledger view is read-only\\n",
                })
                return
            await app(scope, receive, send)

        return read_only

    return wrap
'''

STOP_GRACE_SECONDS = 10.0


def write_plugin(workdir: Path) -> Path:
    """The plugins directory to pass to ``datasette serve --plugins-dir``."""
    plugins = workdir / "plugins"
    private_dir(plugins)
    write_private(plugins / "snapzen_read_only.py", READ_ONLY_PLUGIN)
    return plugins


def run_until_signalled(command: list[str], grace: float = STOP_GRACE_SECONDS) -> int:
    """Run ``command`` until it exits or we get SIGTERM/SIGINT, then stop it and return 0
    (otherwise the child's exit code). Stopping sends SIGTERM and waits ``grace`` seconds, or
    until a second SIGTERM/SIGINT, before SIGKILL: either way the child is gone when this
    returns, so the caller's snapshot directory is removed and the exit is clean."""
    with stop_on_signals(threading.Event()) as stop:
        child = subprocess.Popen(command)
        try:
            while child.poll() is None and not stop.is_set():
                stop.wait(0.2)
        finally:
            _stop(child, grace)
        return 0 if stop.is_set() else int(child.returncode)


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    if child.poll() is not None:
        return
    hurry = threading.Event()  # a second signal: stop now (stop_on_signals restores ours)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: hurry.set())
    child.terminate()
    for _ in range(max(1, round(grace / 0.1))):
        if hurry.is_set() or child.poll() is not None:
            break
        hurry.wait(0.1)
    if child.poll() is None:
        child.kill()
    child.wait()


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workdir: Path | None,
    sql_time_limit_ms: int,
    prepare_only: bool,
    say: Callable[[str], None],
    show: Callable[[str], None],
) -> int:
    """Prepare the snapshot and serve it until stopped (the exit code); with
    ``prepare_only``, ``show`` the command instead. ``say``: progress lines (stderr)."""
    open_ledger(
        settings.ledger, read_only=True
    ).conn.close()  # same existence check and message as other commands
    if importlib.util.find_spec("datasette") is None:
        raise ConfigError(
            "datasette is not installed: pip install 'snapzen[audit]'; the container image "
            "leaves it out: build the auditors' image of docs/cli.md (`ledger serve`)"
        )
    with tempfile.TemporaryDirectory(prefix="snapzen-serve-") as tmp:
        target = workdir or Path(tmp)
        snapshot, metadata, sha = web.prepare(Path(settings.ledger.path), target)
        command = web.serve_command(
            snapshot,
            metadata,
            host=host,
            port=port,
            sql_time_limit_ms=sql_time_limit_ms,
            extra=["--plugins-dir", str(write_plugin(target))],
        )
        say(f"snapshot {snapshot} sha256 {sha}")
        if prepare_only:
            show(" ".join(command))
            if workdir is None:
                say("(temp dir removed; pass --workdir to keep the files)")
            return 0
        say(f"serving read-only at http://{host}:{port}/{web.DB_NAME}")
        return run_until_signalled(command)  # SIGTERM/Ctrl-C: Datasette stopped, tmp removed
