"""Deterministic fault injection: which request fails, and how.

Decisions come from a ``random.Random`` seeded from the sandbox seed, so a sequential client sees
the same fault sequence on every run with the same seed.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from random import Random

from snapzen.sandbox.config import SandboxConfig


@dataclass(frozen=True)
class Fault:
    """One injected fault; ``after`` means the request is processed first, then the fault sent."""

    kind: str
    after: bool


class FaultInjector:
    def __init__(self, cfg: SandboxConfig) -> None:
        self._rate = cfg.fault_rate
        self._kinds = list(cfg.fault_kinds)
        # Timeouts cost real seconds, so their share is set apart from the other kinds.
        others = [k for k in self._kinds if k != "timeout"]
        if "timeout" in self._kinds and others:
            share = cfg.timeout_share
            self._weights = [
                share if k == "timeout" else (1 - share) / len(others) for k in self._kinds
            ]
        else:
            self._weights = [1.0] * len(self._kinds)
        self._rng = Random(f"faults:{cfg.seed}")
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self._planned: dict[str, deque[Fault]] = {}

    def plan(self, endpoint: str, kind: str, *, after: bool, times: int = 1) -> None:
        """The next ``times`` requests to ``endpoint`` (e.g. "zendesk.import_create_many") get
        this fault, whatever the rate: a test's exact scenario ("the POST is applied, then
        answers 500")."""
        with self._lock:
            self._planned.setdefault(endpoint, deque()).extend([Fault(kind, after)] * times)

    def draw(self, mutating: bool, endpoint: str = "") -> Fault | None:
        """Decide the fate of one faultable request.

        For a mutating request a 5xx comes half the time *after* the write happened: the client
        sees an error although the write took effect, the ambiguous case its recovery must handle.
        A malformed body and a timeout always follow processing (the server did its work; the
        answer is what goes wrong).
        """
        with self._lock:
            planned = self._planned.get(endpoint)
            if planned:
                fault = planned.popleft()
                self.injected[fault.kind] += 1
                return fault
        if not self._kinds:
            return None
        with self._lock:
            if self._rng.random() >= self._rate:
                return None
            kind = self._rng.choices(self._kinds, weights=self._weights)[0]
            coin = self._rng.random() < 0.5
            self.injected[kind] += 1
        after = kind in ("timeout", "malformed_json") or (mutating and coin)
        return Fault(kind=kind, after=after)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.injected)

    def reset(self) -> None:
        with self._lock:
            self.injected.clear()
            self._planned.clear()
