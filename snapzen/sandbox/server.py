"""``Sandbox``: the emulator, served on a loopback port by a background thread or mounted
in-process (``serve=False``)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from snapzen.support.errors import ConfigError

try:  # the emulator's dependencies are an extra: production images do not carry them
    import faker  # noqa: F401
    import werkzeug  # noqa: F401
except ModuleNotFoundError as exc:
    raise ConfigError(
        f"the sandbox needs the 'sandbox' extra ({exc.name} is missing): "
        "pip install 'snapzen[sandbox]'"
    ) from exc

from werkzeug.serving import WSGIRequestHandler, make_server

from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.config import NOTICES, SandboxConfig, service_time
from snapzen.sandbox.data import generate
from snapzen.sandbox.inprocess import WsgiAdapter

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
        self._stopped = threading.Event()
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
        else:
            self._stopped.set()
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

    def state(self) -> dict[str, Any]:
        return self.app.state()

    def truth(self) -> list[dict[str, Any]]:
        return self.app.truth()

    def tickets(self) -> list[dict[str, Any]]:
        return self.app.tickets()

    def reset_counters(self) -> None:
        self.app.reset_counters()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
