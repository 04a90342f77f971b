"""``Sandbox``: runs the emulator on a loopback port in a background thread."""

from __future__ import annotations

import gc
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

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.config import Addressed, SandboxConfig
from snapzen.sandbox.data import generate

_heap_lock = threading.Lock()
_heap_holders = 0  # running sandboxes that froze the heap


def _freeze_heap() -> bool:
    """Move every object tracked so far, above all the generated data set, out of the cyclic
    garbage collector's reach (``gc.freeze``) until the last running sandbox stops.

    The data set is large, long-lived and never changes, yet every full collection walked it
    again: at 10,000 chats the two that fell within a backfill took ~0.19 s of the emulator's
    CPU (ten times that at 100,000), taken from snapzen on the benchmark's shared cores.
    Frozen objects are still freed by reference counting; only cyclic garbage among them waits
    for ``_thaw_heap``. A host process that froze objects itself is left alone."""
    global _heap_holders
    with _heap_lock:
        if _heap_holders == 0 and gc.get_freeze_count() > 0:
            return False
        gc.freeze()
        _heap_holders += 1
        return True


def _thaw_heap() -> None:
    global _heap_holders
    with _heap_lock:
        _heap_holders -= 1
        if _heap_holders == 0:
            gc.unfreeze()


class _QuietHandler(WSGIRequestHandler):
    """Drops werkzeug's per-request access log (benchmarks make thousands of requests) and speaks
    HTTP/1.1 so pooled clients keep their connections alive, as they would with the real APIs."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Sandbox(Addressed):
    """A running emulator of the SnapEngage Logs API and the Zendesk ticket-import API.

    The server starts in the constructor (so ``Sandbox(cfg)`` alone is usable), and ``stop()`` is
    idempotent; ``with Sandbox(cfg) as sb:`` stops it on exit.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.started_at = datetime.now(UTC)  # the emulated service's own clock, not snapzen's
        self.dataset = generate(self.config, self.config.anchor or self.started_at)
        self.app = SandboxApp(self.config, self.dataset)
        self._server: BaseWSGIServer = make_server(
            self.config.host,
            self.config.port,
            self.app,
            threaded=True,
            request_handler=_QuietHandler,
        )
        host = self.config.host
        self.port: int = self._server.server_port
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.app.store.base_url = self.base_url
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._froze_heap = _freeze_heap()
        # A short poll interval makes stop() return in ~50 ms instead of werkzeug's 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"snapzen-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """No-op kept for symmetry: the server is already running after construction."""
        if self._stopped:
            raise RuntimeError("this Sandbox was stopped; create a new one")
        return self

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._froze_heap:
            _thaw_heap()

    @property
    def running(self) -> bool:
        return not self._stopped

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- inspection (same data as the /_sandbox endpoints, without HTTP) -----------------------
    def state(self) -> dict[str, Any]:
        return self.app.state()

    def truth(self) -> list[dict[str, Any]]:
        return self.app.truth()

    def tickets(self) -> list[dict[str, Any]]:
        return self.app.store.inspect_tickets()

    def reset_counters(self) -> None:
        self.app.reset_counters()
