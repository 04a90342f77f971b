"""``Sandbox``: the app served on a loopback port by a background thread."""

from __future__ import annotations

import threading
from types import TracebackType

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

from snapzen.sandbox.app import Addressed
from snapzen.sandbox.config import SandboxConfig


class _QuietHandler(WSGIRequestHandler):
    """Drops werkzeug's per-request access log (benchmarks make thousands of requests) and speaks
    HTTP/1.1 so pooled clients keep their connections alive, as they would with the real APIs."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Sandbox(Addressed):
    """A running emulator of the SnapEngage Logs API and the Zendesk ticket-import API.

    The server starts in the constructor (``Sandbox(cfg)`` alone is usable); ``stop()`` is
    idempotent; ``with Sandbox(cfg) as sb:`` stops it on exit.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        super().__init__(config or SandboxConfig())
        host = self.config.host
        self._server = make_server(
            host, self.config.port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.port: int = self._server.server_port
        self.answer_at(f"http://{f'[{host}]' if ':' in host else host}:{self.port}")
        self._stopped = threading.Event()
        # A short poll interval makes stop() return in ~50 ms instead of werkzeug's 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"snapzen-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

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
