"""`snapzen run`'s loop with an injected clock and stop event (no real waiting anywhere), and
the retention sweep as its daily job."""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from snapzen.commands import retention
from snapzen.commands.run import patiently, stop_on_signals
from snapzen.commands.service import Scheduler, retention_job
from snapzen.support import errors
from snapzen.support.settings import Settings

START = datetime(2024, 5, 1, 3, 0, 0)
EVERY = timedelta(minutes=15)


class FakeTime:
    """A clock that only moves when the loop waits (or a pass 'takes' time)."""

    def __init__(self, stop: threading.Event) -> None:
        self.now = START
        self.stop = stop
        self.waits: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        assert len(self.waits) < 10_000, "the loop must wait until the next job, not spin"
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        return self.stop.is_set()


def test_first_pass_at_start_then_one_per_interval() -> None:
    stop = threading.Event()
    fake = FakeTime(stop)
    starts: list[datetime] = []

    def one_pass() -> int:
        starts.append(fake.now)
        return 0

    sched = Scheduler(one_pass, EVERY, stop=stop, clock=fake.clock, wait=fake.wait, max_passes=4)
    assert sched.run() == 0
    assert starts == [START + i * EVERY for i in range(4)]
    assert len(fake.waits) <= 6  # it sleeps until the next pass, it does not poll


def test_passes_never_overlap_and_a_long_pass_does_not_cause_a_burst() -> None:
    stop = threading.Event()
    fake = FakeTime(stop)
    spans: list[tuple[datetime, datetime]] = []
    running: list[int] = []

    def slow_pass() -> int:
        assert not running, "a pass started while another was running"
        running.append(1)
        began = fake.now
        fake.now += timedelta(minutes=40)  # longer than the interval
        spans.append((began, fake.now))
        running.pop()
        return 0

    Scheduler(slow_pass, EVERY, stop=stop, clock=fake.clock, wait=fake.wait, max_passes=3).run()
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended + EVERY  # next pass one interval after the previous one ended
    assert len(spans) == 3


def test_stop_during_a_pass_lets_it_finish_and_starts_no_other() -> None:
    stop = threading.Event()
    fake = FakeTime(stop)
    finished: list[int] = []

    def one_pass() -> int:
        stop.set()  # SIGTERM arrives mid-pass
        finished.append(1)  # ...and the pass still completes its work
        return 3

    sched = Scheduler(one_pass, EVERY, stop=stop, clock=fake.clock, wait=fake.wait)
    assert sched.run() == 0  # stopped cleanly, whatever the last pass said
    assert finished == [1]
    assert sched.last_exit_code == 3


def test_stop_while_idle_ends_the_loop_at_once() -> None:
    stop = threading.Event()
    fake = FakeTime(stop)
    calls: list[int] = []

    def wait(seconds: float) -> bool:
        stop.set()  # the signal handler ran while we slept
        return fake.wait(seconds)

    def one_pass() -> int:
        calls.append(1)
        return 0

    Scheduler(one_pass, EVERY, stop=stop, clock=fake.clock, wait=wait).run()
    assert calls == [1]


def test_daily_job_runs_once_a_day_at_its_time_and_its_failure_is_contained() -> None:
    stop = threading.Event()
    fake = FakeTime(stop)
    sweeps: list[datetime] = []

    def sweep() -> None:
        sweeps.append(fake.now)
        raise RuntimeError("sweep broke")  # must not end the sync service

    sched = Scheduler(
        lambda: 0,
        timedelta(hours=6),
        stop=stop,
        daily=sweep,
        daily_at="03:30",
        clock=fake.clock,
        wait=fake.wait,
        max_passes=9,  # 48 hours of 6-hour passes
    )
    sched.run()
    assert [s.strftime("%d %H:%M") for s in sweeps] == ["01 03:30", "02 03:30"]


def test_sigterm_sets_the_stop_event_and_handlers_are_restored() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(1.0)
    assert signal.getsignal(signal.SIGTERM) == before


def test_patiently_retries_while_the_lock_is_held_and_gives_up_on_stop() -> None:
    stop = threading.Event()
    attempts: list[int] = []

    def attempt() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise errors.LockHeld("busy")
        return 7

    assert patiently(attempt, stop, None) == 7
    assert len(attempts) == 3

    def never() -> int:
        stop.set()
        raise errors.LockHeld("busy")

    assert patiently(never, stop, None) is None


def test_interval_below_a_second_is_refused() -> None:
    with pytest.raises(errors.ConfigError):
        Scheduler(lambda: 0, timedelta(0), stop=threading.Event())


@pytest.mark.parametrize("daily_at", ["3h30", "25:00", "0330", "03:30Z", "03:30+01:00"])
def test_a_daily_time_that_is_not_hh_mm_is_refused(daily_at: str) -> None:
    """Exit 2 with one line, never a traceback from `schedule` (whose format is stricter
    than ISO 8601's: "0330" and "03:30Z" are ISO times it refuses)."""
    with pytest.raises(errors.ConfigError, match=re.escape(f"{daily_at!r} is not HH:MM")):
        Scheduler(lambda: 0, EVERY, stop=threading.Event(), daily=lambda: None, daily_at=daily_at)


def test_daily_job_is_the_retention_sweep_waiting_for_the_lock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_sweep(given: Settings, **kwargs: Any) -> str:
        calls.append({"settings": given, **kwargs})
        return "swept"

    monkeypatch.setattr(retention, "run_sweep", fake_sweep)
    job = retention_job(settings)
    assert job is not None
    assert job() == "swept"
    assert calls == [{"settings": settings, "actor": "scheduler", "wait": True}]
