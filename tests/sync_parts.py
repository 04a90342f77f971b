"""Drive the sync engine's parts without wall-clock time."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when a test (or a fake it drives) says so: by
    ``advance``, or by ``sleep``, which also records each wait in ``sleeps`` (a client's
    pacing is then exact)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
