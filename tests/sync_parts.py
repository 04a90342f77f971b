"""Drive the sync engine's parts without wall-clock time."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when a test (or a fake it drives) says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
