"""What every API call of the sandbox goes through besides its handler: Zendesk's rate budgets
(a fixed window, as its headers describe it) and the injected faults.

Faults are drawn from a ``random.Random`` seeded from the sandbox seed, so a sequential client
sees the same faults on every run with the same seed. For a mutating request a 5xx comes half
the time *after* the write happened (the ambiguous case a client's recovery must handle); a
malformed body and a timeout always follow processing. Tests plan exact faults with ``plan``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import NamedTuple

from werkzeug.wrappers import Response

from snapzen.sandbox.config import SandboxConfig


class Hit(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # whole seconds until the window resets, at least 1

    def header(self) -> str:
        """As Zendesk's per-endpoint and job headers give it."""
        return f"total={self.limit}; remaining={self.remaining}; resets={self.reset_seconds}"


class Budget:
    """Requests per fixed window, aligned to the budget's creation, as Zendesk's headers describe
    it (a limit, what remains, when it resets). Refused requests count too, as on the real
    service: a client hammering through 429s gets its budget back no sooner."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window_seconds, clock
        self._origin, self._index, self._count = clock(), 0, 0
        self._lock = threading.Lock()

    def hit(self) -> Hit:
        with self._lock:
            elapsed = self._clock() - self._origin
            index = int(elapsed // self.window)
            if index != self._index:
                self._index, self._count = index, 0
            self._count += 1
            reset = max(1, math.ceil((index + 1) * self.window - elapsed))
            return Hit(
                self._count <= self.limit, self.limit, max(0, self.limit - self._count), reset
            )


# What each fault answers (``Fault.answer``).
_FAULTS = {
    "http_500": (500, "application/json", '{"error":"InternalServerError","description":"fault"}'),
    "http_502": (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "http_503": (503, "text/plain", "Service Unavailable: scheduled maintenance"),
    "http_503_retry_after": (
        503,
        "application/json",
        '{"error":"DatabaseTimeout","description":"retry"}',
    ),
    "gateway": (504, "application/json", '{"error":"GatewayTimeout","description":"timed out"}'),
}


@dataclass(frozen=True)
class Fault:
    kind: str
    after: bool  # the request is processed first, then the fault is sent

    def answer(self, response: Response | None, stall: float = 0.0) -> Response:
        """What the client gets instead of ``response`` (None: the work was not done). A
        timeout and a malformed body alter the real answer; without one, they are a gateway's
        timeout (a 504)."""
        if response is not None and self.kind == "timeout":
            # The work is done; the answer just arrives too late for a client with a short read
            # timeout, which cannot know whether its write happened.
            time.sleep(stall)
            return response
        if response is not None and self.kind == "malformed_json":
            text = response.get_data(as_text=True) or '{"job_status": {"id": "'
            return Response(text[: max(1, len(text) // 2)], 200, mimetype="application/json")
        status, mimetype, body = _FAULTS.get(self.kind, _FAULTS["gateway"])
        retry = {"Retry-After": "1"} if self.kind == "http_503_retry_after" else None
        return Response(body, status, retry, mimetype=mimetype)


class FaultInjector:
    def __init__(self, cfg: SandboxConfig) -> None:
        self._rate, self._kinds = cfg.fault_rate, list(cfg.fault_kinds)
        # Timeouts cost real seconds, so their share is set apart from the other kinds.
        others = len([k for k in self._kinds if k != "timeout"])
        share = cfg.timeout_share if others and len(self._kinds) > others else None
        self._weights = [
            1.0 if share is None else share if k == "timeout" else (1 - share) / others
            for k in self._kinds
        ]
        self._rng = Random(f"faults:{cfg.seed}")
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self._planned: dict[str, deque[Fault]] = {}

    def plan(self, endpoint: str, kind: str, *, after: bool, times: int = 1) -> None:
        """The next ``times`` requests to ``endpoint`` (e.g. "zendesk.import_create_many") get
        this fault, whatever the rate: a test's exact scenario ("applied, then a 500")."""
        with self._lock:
            self._planned.setdefault(endpoint, deque()).extend([Fault(kind, after)] * times)

    def draw(self, mutating: bool, endpoint: str = "") -> Fault | None:
        with self._lock:
            planned = self._planned.get(endpoint)
            if planned:
                fault = planned.popleft()
            elif not self._kinds or self._rng.random() >= self._rate:
                return None
            else:
                kind = self._rng.choices(self._kinds, weights=self._weights)[0]
                coin = self._rng.random() < 0.5
                fault = Fault(kind, kind in ("timeout", "malformed_json") or (mutating and coin))
            self.injected[fault.kind] += 1
            return fault

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.injected)

    def reset(self) -> None:
        with self._lock:
            self.injected.clear()
            self._planned.clear()
