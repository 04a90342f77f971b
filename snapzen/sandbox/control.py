"""Running the sandbox for `snapzen sandbox serve | dump`: in the foreground until SIGINT or
SIGTERM, or detached in its own session (waiting for its ready file), and reading a running
sandbox's inspection JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.server import Sandbox
from snapzen.support.atomic import open_private_binary, write_private

START_SECONDS = 60  # a detached sandbox that is not listening by then failed to start


def write_ready_file(path: Path, sb: Sandbox) -> None:
    """{base_url, env} as JSON, written then renamed, so a script polling for the file never
    reads half a document; 0600: it holds the sandbox's credentials (SNAPZEN_* settings)."""
    tmp = path.with_name(path.name + ".tmp")
    write_private(tmp, json.dumps({"base_url": sb.base_url, "env": sb.env()}, indent=2))
    tmp.replace(path)


def serve_until_stopped(
    cfg: SandboxConfig, *, duration: float | None, ready_file: Path | None,
    on_listening: Callable[[Sandbox], None],
) -> None:  # fmt: skip
    """Serve until SIGINT/SIGTERM (or ``duration`` seconds); ``on_listening`` is told once the
    server listens, before the ready file is written."""
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        with Sandbox(cfg) as sb:
            on_listening(sb)
            if ready_file is not None:
                write_ready_file(ready_file, sb)
            stop.wait(timeout=duration)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Detached:
    pid: int
    base_url: str
    env: dict[str, Any]
    log_path: Path


class StartFailed(Exception):
    """The detached sandbox exited, or did not listen in time; its log says why."""


def detach(args: list[str], ready_file: Path | None) -> Detached:
    """Start ``snapzen sandbox serve ARGS`` in its own session and wait for its ready file:
    a script that goes on at once would otherwise read a file that is not there yet."""
    if ready_file is None:
        ready_file = Path(tempfile.mkdtemp(prefix="snapzen-sandbox-")) / "ready.json"
    ready_file.unlink(missing_ok=True)  # never mistake an earlier run's file for this one
    log_path = ready_file.with_name(ready_file.name + ".log")
    with open_private_binary(log_path) as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "snapzen", "sandbox", "serve", *args,
             "--ready-file", str(ready_file)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_SECONDS
    while not ready_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            if child.poll() is None:
                child.terminate()
            raise StartFailed(f"sandbox did not start; see {log_path}")
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text())
    return Detached(child.pid, ready["base_url"], ready["env"], log_path)


def default_url() -> str | None:
    """$SNAPZEN_SANDBOX_URL, or the sandbox $SNAPZEN_ZENDESK__BASE_URL points at."""
    url = os.environ.get("SNAPZEN_SANDBOX_URL")
    if url:
        return url
    zendesk = os.environ.get("SNAPZEN_ZENDESK__BASE_URL", "")
    return zendesk.removesuffix("/zendesk") if zendesk.endswith("/zendesk") else None


class Unreadable(Exception):
    """The sandbox at that URL did not answer (or not with JSON)."""


def inspect(base: str, what: str) -> Any:
    """The inspection JSON ``what`` (state, tickets or truth) of the sandbox at ``base``."""
    try:
        response = requests.get(f"{base.rstrip('/')}/_sandbox/{what}", timeout=30)
        response.raise_for_status()
        return response.json()
    except requests.RequestException as exc:
        raise Unreadable(f"cannot read the sandbox at {base}: {exc}") from exc
