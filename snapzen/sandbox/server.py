"""Running the sandbox. ``Sandbox``: the app served on a loopback port by a background thread,
or mounted in-process (``serve=False``) through ``WsgiAdapter``. For `snapzen sandbox serve |
dump`: serving in the foreground until SIGINT or SIGTERM, or detached in its own session
(waiting for its ready file), and reading a running sandbox's inspection JSON.

The in-process adapter: as httpx mounts an app with ``WSGITransport``, a session mounts
:class:`WsgiAdapter` on a URL prefix and every request to it becomes one WSGI call of the app
(the whole sandbox: routing, auth, rate limits, faults, the store). Tests use it through
``snapzen.clients.origin.mounted``: the clients snapzen builds from settings then talk to the
sandbox as they would to the loopback server, minus the network::

    box = Sandbox(SandboxConfig(chats=0), serve=False)
    with mounted(box.base_url, box.adapter):
        ...  # SNAPZEN_*__BASE_URL from box.env()
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from snapzen.support.atomic import open_private_binary, write_private
from snapzen.support.errors import ConfigError

try:  # the emulator's dependencies are an extra: production images do not carry them
    import faker  # noqa: F401
    import werkzeug  # noqa: F401
except ModuleNotFoundError as exc:
    raise ConfigError(
        f"the sandbox needs the 'sandbox' extra ({exc.name} is missing): "
        "pip install 'snapzen[sandbox]'"
    ) from exc

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPResponse
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app

from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.config import NOTICES, SandboxConfig, service_time
from snapzen.sandbox.data import generate

WsgiApp = Callable[..., Iterable[bytes]]


class WsgiAdapter(BaseAdapter):
    """Sends a PreparedRequest to a WSGI app and hands back its answer as a requests Response
    (streamed from memory, so body caps and ``read1`` work as on a socket). Like any HTTP
    server, it adds a ``Date`` header unless the app sent one (``send_date=False``: a proxy
    that drops it)."""

    def __init__(self, app: WsgiApp, *, send_date: bool = True) -> None:
        super().__init__()
        self.app = app
        self.send_date = send_date

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        environ = EnvironBuilder(
            path=url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method or "GET",
            headers=list(request.headers.items()),
            data=body.encode("utf-8") if isinstance(body, str) else bytes(body),
        ).get_environ()
        chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        content = b"".join(chunks)
        code, _, reason = status.partition(" ")
        fields = CaseInsensitiveDict(dict(headers))
        if self.send_date and "Date" not in fields:
            fields["Date"] = formatdate(service_time(), usegmt=True)
        fields.setdefault("Content-Length", str(len(content)))
        response = requests.Response()
        response.status_code, response.reason, response.headers = int(code), reason, fields
        response.raw = HTTPResponse(
            body=io.BytesIO(content),
            headers=dict(fields),
            status=int(code),
            reason=reason,
            preload_content=False,
            decode_content=False,
        )
        response.encoding = get_encoding_from_headers(fields)
        response.url, response.request = request.url or "", request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        return None


IN_PROCESS_URL = "https://sandbox.test"  # where a sandbox that is not served answers


class _QuietHandler(WSGIRequestHandler):
    """Drops werkzeug's per-request access log (benchmarks make thousands of requests) and speaks
    HTTP/1.1 so pooled clients keep their connections alive, as they would with the real APIs."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Sandbox:
    """An emulator of the SnapEngage Logs API and the Zendesk ticket-import API: its data set,
    the app (``app``: the store, faults, counters), where it answers, the settings that point
    snapzen at it and the inspection, without HTTP.

    The server starts in the constructor (``Sandbox(cfg)`` alone is usable); ``stop()`` is
    idempotent; ``with Sandbox(cfg) as sb:`` stops it on exit. ``serve=False``: no server, the
    app at ``IN_PROCESS_URL`` for a requests session that mounts ``adapter`` (unit and
    integration tests).
    """

    def __init__(self, config: SandboxConfig | None = None, *, serve: bool = True) -> None:
        self.config = cfg = config or SandboxConfig()
        # The chats end now on the services' own clock, which snapzen's offset does not move.
        self.dataset = generate(cfg, cfg.anchor or datetime.fromtimestamp(service_time(), UTC))
        self.app = SandboxApp(cfg, self.dataset)
        self.widget_ids = list(self.dataset.widget_ids)
        self.adapter = WsgiAdapter(self.app)
        # The inspection (also at /_sandbox/...): the app's own.
        self.state, self.truth, self.tickets = self.app.state, self.app.truth, self.app.tickets
        self.reset_counters = self.app.reset_counters
        self._server: BaseWSGIServer | None = None
        self.base_url = IN_PROCESS_URL
        if serve:
            self._server = make_server(
                cfg.host, cfg.port, self.app, threaded=True, request_handler=_QuietHandler
            )
            self.port: int = self._server.server_port
            self.base_url = f"http://{f'[{cfg.host}]' if ':' in cfg.host else cfg.host}:{self.port}"
            # A short poll interval makes stop() return in ~50 ms instead of werkzeug's 0.5 s.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"snapzen-sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        self.app.store.base_url = self.base_url
        self.snapengage_base_url = f"{self.base_url}/snapengage"
        self.zendesk_base_url = f"{self.base_url}/zendesk"

    def env(self) -> dict[str, str]:
        """Environment variables that point snapzen at this sandbox."""
        cfg = self.config
        return {
            "SNAPZEN_SNAPENGAGE__BASE_URL": self.snapengage_base_url,
            "SNAPZEN_SNAPENGAGE__ORG_ID": cfg.org_id,
            "SNAPZEN_SNAPENGAGE__API_TOKEN": cfg.snapengage_token,
            "SNAPZEN_SNAPENGAGE__WIDGETS": ",".join(self.dataset.widget_ids),
            "SNAPZEN_ZENDESK__BASE_URL": self.zendesk_base_url,
            "SNAPZEN_ZENDESK__EMAIL": cfg.zendesk_email,
            "SNAPZEN_ZENDESK__API_TOKEN": cfg.zendesk_token,
            "SNAPZEN_TRANSFER__CONTROLLER_COUNTRY": cfg.controller_country,
            "SNAPZEN_CONSENT__NOTICES": json.dumps(NOTICES),
        }

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


START_SECONDS = 60  # a detached sandbox that is not listening by then failed to start


def write_ready_file(path: Path, sb: Sandbox) -> None:
    """{base_url, env} as JSON, written then renamed, so a script polling for the file never
    reads half a document; 0600: it holds the sandbox's credentials (SNAPZEN_* settings)."""
    tmp = path.with_name(path.name + ".tmp")
    write_private(tmp, json.dumps({"base_url": sb.base_url, "env": sb.env()}, indent=2))
    tmp.replace(path)


# `sandbox serve`'s options named otherwise than their SandboxConfig field, and those that
# say how to serve rather than what to emulate.
_RENAMED = {
    "rate_limit": "rate_limit_per_minute",
    "rate_window": "rate_window_seconds",
    "max_jobs": "max_jobs_in_flight",
    "fault_timeout": "fault_timeout_seconds",
}
_HOW = ("allow_nonlocal", "ready_file", "duration", "detach")


def serve(options: Mapping[str, Any], on_listening: Callable[[Sandbox], None]) -> None:
    """`snapzen sandbox serve`: ``options`` as the command line names them. ConfigError
    (exit 2, nothing served) for a non-loopback host without ``allow_nonlocal``, or a value
    the config refuses. Serves until SIGINT/SIGTERM (or ``duration`` seconds);
    ``on_listening`` is told once the server listens, before ``ready_file`` is written."""
    from snapzen.support.settings import is_loopback  # lazy: pydantic-settings

    host = options.get("host", SandboxConfig.host)
    if not is_loopback(host) and not options.get("allow_nonlocal"):
        # The sandbox serves fake credentials and personal-looking data with no real auth.
        raise ConfigError(
            f"refusing to listen on non-loopback host {host!r}; pass --allow-nonlocal to override"
        )
    given = {_RENAMED.get(k, k): v for k, v in options.items() if k not in _HOW}
    try:
        cfg = SandboxConfig(**given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid sandbox settings: {exc}") from exc
    ready_file = options.get("ready_file")
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        with Sandbox(cfg) as sb:
            on_listening(sb)
            if ready_file is not None:
                write_ready_file(Path(ready_file), sb)
            stop.wait(timeout=options.get("duration"))
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
            [
                sys.executable,
                "-m",
                "snapzen",
                "sandbox",
                "serve",
                *args,
                "--ready-file",
                str(ready_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
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
