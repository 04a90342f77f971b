"""`snapzen run`: one sync pass at start, then one every interval, driven by `schedule`.

Passes never overlap: `schedule` runs jobs synchronously in `run_pending`, and computes the
next run from the moment a pass *ends*, so a pass longer than the interval is followed by one
pass, never by a burst of catch-up passes. Across processes the writer lock (taken per pass,
not for the life of the process) keeps a manual `sync` or `backfill` from writing at the same
time, and lets them have turns between passes.

A stop request (SIGTERM from `docker stop`/Kubernetes, SIGINT from Ctrl-C) sets an event: the
pass in hand finishes its batch (the pipeline checks the same event between pages and batches),
then the loop returns 0. Time is injectable (``clock`` and ``wait``) so tests never sleep.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import signal
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import schedule

from snapzen.commands import service
from snapzen.ledger.store.db import check_ledger
from snapzen.support import clock as wall_clock
from snapzen.support import errors
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings

if TYPE_CHECKING:
    from snapzen.sync.pipeline import PassResult

log = get_logger("snapzen.commands.scheduler")

T = TypeVar("T")
PassFn = Callable[[], int]
DailyJob = Callable[[], object]

# When the writer lock is busy, try again this often (seconds) so a stop request is noticed.
LOCK_POLL_SECONDS = 1.0


@contextmanager
def _schedule_clock(clock: Callable[[], dt.datetime] | None) -> Iterator[None]:
    """Make `schedule` read ``clock`` instead of the wall clock, for the duration of a call.

    `schedule` calls ``datetime.datetime.now()`` on its module-level ``datetime`` import and
    takes no clock argument; swapping that one reference is the only way to drive it from a
    test clock, or from snapzen's clock (``support.clock.local_now``, the default: the
    process's local time moved by SNAPZEN_CLOCK_OFFSET_SECONDS)."""
    read = clock or wall_clock.local_now

    class _Clocked(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> _Clocked:
            moment = read()
            if tz is not None:
                moment = moment.astimezone(tz)
            return moment  # type: ignore[return-value]

    shim = types.SimpleNamespace(
        datetime=_Clocked, timedelta=dt.timedelta, time=dt.time, date=dt.date
    )
    original = schedule.datetime  # type: ignore[attr-defined]
    setattr(schedule, "datetime", shim)  # noqa: B010 - a module attribute, see docstring
    try:
        yield
    finally:
        setattr(schedule, "datetime", original)  # noqa: B010


class Scheduler:
    """Runs ``pass_fn`` now and then every ``every``; optionally ``daily`` at ``daily_at``.

    ``wait(seconds)`` must return early (True) when a stop is requested; the default is
    ``stop.wait``. ``max_passes`` bounds the loop for tests and one-off use."""

    def __init__(
        self,
        pass_fn: PassFn,
        every: dt.timedelta,
        *,
        stop: threading.Event,
        daily: DailyJob | None = None,
        daily_at: str = "03:30",
        clock: Callable[[], dt.datetime] | None = None,
        wait: Callable[[float], bool] | None = None,
        max_passes: int | None = None,
    ) -> None:
        if every.total_seconds() < 1:
            raise errors.ConfigError("schedule interval must be at least 1 second")
        self.pass_fn = pass_fn
        self.every = every
        self.stop = stop
        self.clock = clock
        self.wait = wait or (lambda seconds: stop.wait(timeout=seconds))
        self.max_passes = max_passes
        self.passes = 0
        self.last_exit_code: int | None = None
        self._sched = schedule.Scheduler()
        with _schedule_clock(clock):
            if daily is not None:
                # Local time of the process; the image sets TZ=UTC.
                self._sched.every().day.at(daily_at).do(self._daily, daily)

    def _one_pass(self) -> None:
        if self.stop.is_set():
            return
        try:  # schedule runs jobs one at a time: passes never overlap
            self.last_exit_code = self.pass_fn()
        finally:
            self.passes += 1
        if self.max_passes is not None and self.passes >= self.max_passes:
            self.stop.set()

    def _daily(self, job: DailyJob) -> None:
        if self.stop.is_set():
            return
        try:
            job()
        except errors.LockHeld as exc:
            log.warning("daily_job_skipped", reason=str(exc))
        except Exception as exc:
            # A failed sweep must not end the sync service; it retries tomorrow and the
            # error is in the log (and, for the retention sweep, in the runs table).
            log.error("daily_job_failed", error_type=type(exc).__name__, error=str(exc))

    def run(self) -> int:
        """Loop until stopped; returns the process exit code (0: stopped cleanly)."""
        log.info("scheduler_started", every_seconds=int(self.every.total_seconds()))
        self._one_pass()  # one pass at start, not one interval later
        with _schedule_clock(self.clock):
            # Registered after the first pass so the next one is an interval after it ended.
            self._sched.every(int(self.every.total_seconds())).seconds.do(self._one_pass)
        while not self.stop.is_set():
            with _schedule_clock(self.clock):
                self._sched.run_pending()
                idle = self._sched.idle_seconds
            if self.stop.is_set():
                break
            # idle is None only with no jobs (cannot happen: the pass job never cancels).
            self.wait(max(0.0, idle if idle is not None else self.every.total_seconds()))
        log.info("scheduler_stopped", passes=self.passes)
        return errors.EXIT_OK


@contextmanager
def stop_on_signals(
    stop: threading.Event, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[threading.Event]:
    """Turn the first SIGTERM/SIGINT into ``stop.set()``; a second one restores the default
    behaviour and re-raises it, so an impatient operator can still kill the process."""
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        stop.set()
        # Not logged here: the handler runs between two bytecodes of the main thread, which may
        # be inside a log write holding the logger's lock (a deadlock seen with Ctrl-C during
        # a sync). A thread of its own waits for that lock instead.
        threading.Thread(
            target=contextvars.copy_context().run,  # keeps the run id bound to the line
            args=(log.warning, "stop_signal_received"),
            kwargs={"signal": signal.Signals(signum).name},
            name="stop-signal-log",
            daemon=True,
        ).start()

    for signum in signals:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def patiently(
    attempt: Callable[[], T], stop: threading.Event, patience: dt.timedelta | None
) -> T | None:
    """Call ``attempt`` (which raises LockHeld after ~LOCK_POLL_SECONDS) until it gets the
    writer lock, a stop is requested, or ``patience`` runs out (None: forever).

    Returns the attempt's result, or None when it never got the lock. Waiting in short slices
    instead of one blocking acquire keeps SIGTERM responsive while another run holds the lock."""
    # A duration: the monotonic clock, which no wall-clock offset moves.
    deadline = None if patience is None else time.monotonic() + patience.total_seconds()
    while not stop.is_set():
        try:
            return attempt()
        except errors.LockHeld:
            if deadline is not None and time.monotonic() >= deadline:
                return None
    return None


def sync_pass(
    settings: Settings,
    stop: threading.Event,
    *,
    patience: dt.timedelta | None = None,
    clients: service.Clients | None = None,
    report: Callable[[PassResult], None] | None = None,
) -> PassFn:
    """The scheduled job: one `sync` pass under the writer lock, as an exit code.

    Errors are logged and the service goes on (the `runs` row says 'aborted' and
    `status --check` turns unhealthy), because the next pass may well succeed (an API outage);
    a configuration error is caught before the loop starts. ``report`` sees each finished
    pass (`run --format json` prints it)."""
    check_ledger(settings.ledger)  # missing, another key, newer schema: exit 2, no loop

    def attempt() -> int:
        result = service.sync(
            settings, wait=True, lock_timeout=LOCK_POLL_SECONDS, stop=stop.is_set, clients=clients
        )
        if report is not None:
            report(result)
        return result.exit_code

    def run_one() -> int:
        try:
            code = patiently(attempt, stop, patience)
        except Exception as exc:
            failed = "pass_failed" if isinstance(exc, errors.SnapzenError) else "pass_crashed"
            log.error(failed, error_type=type(exc).__name__, error=str(exc))
            return errors.EXIT_ABORTED
        if code is None:
            if not stop.is_set():
                log.warning("pass_skipped_lock_held")
            return errors.EXIT_OK
        return code

    return run_one
