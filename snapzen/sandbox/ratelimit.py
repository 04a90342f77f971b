"""Fixed-window account rate limit, modelled on Zendesk's per-minute request budget."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    """Outcome of counting one request: whether it may proceed and the header values to send."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # whole seconds until the window resets, at least 1


class FixedWindowLimiter:
    """Counts requests in windows aligned to the limiter's creation time.

    A fixed window (not a sliding one) is what Zendesk's headers describe: a budget, a remaining
    count and a reset time. Requests refused with 429 still count, as they do on the real service,
    so a client hammering through a 429 does not get its budget back any sooner.
    """

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._origin = clock()
        self._window_index = 0
        self._count = 0
        self._lock = threading.Lock()

    def hit(self) -> RateDecision:
        with self._lock:
            now = self._clock()
            index = int((now - self._origin) // self.window)
            if index != self._window_index:
                self._window_index, self._count = index, 0
            self._count += 1
            window_end = self._origin + (index + 1) * self.window
            reset = max(1, math.ceil(window_end - now))
            return RateDecision(
                allowed=self._count <= self.limit,
                limit=self.limit,
                remaining=max(0, self.limit - self._count),
                reset_seconds=reset,
            )
