"""The sync pass and the service that repeats it.

``run_pass``: build the real clients from settings and run a pass under the writer lock, with
a `runs` row that says how it ended (sync, backfill's slices and retry call it).

``run_service`` (`snapzen run`): one sync pass at start, then one every interval, and the
retention sweep once a day, until SIGTERM/SIGINT. Passes never overlap: the ``Scheduler`` runs
its jobs one at a time and times the next pass from the moment one *ends*, so a pass longer
than the interval is followed by one pass, never by a burst of catch-up passes. Across
processes the writer lock (taken per pass, not for the life of the process) keeps a manual
`sync` or `backfill` from writing at the same time, and lets them have turns between passes.
A stop request sets an event: the pass in hand finishes its batch (the pipeline checks the
same event between pages and batches), then the loop returns 0. Time is injectable (``clock``
and ``wait``) so tests never sleep.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import schedule
import sqlite_utils

from snapzen.commands import retention
from snapzen.commands.clients import Clients, clients_from
from snapzen.commands.clock_guard import ClockAheadError, check_against_zendesk
from snapzen.commands.init import refuse_first_pass
from snapzen.commands.run import LOCK_POLL_SECONDS, locked_run, patiently, stop_on_signals
from snapzen.ledger.store.db import check_ledger
from snapzen.support import clock as wall_clock
from snapzen.support import errors
from snapzen.support.log import get_logger
from snapzen.support.settings import (
    Settings,
    parse_interval,
    require_ledger_key,
    require_sync_settings,
)
from snapzen.sync.pipeline import CrashHook, PassResult, Pipeline

log = get_logger("snapzen.commands.service")

PassFn = Callable[[], int]
DailyJob = Callable[[], object]


def run_pass(
    settings: Settings,
    kind: str,
    body: Callable[[Pipeline], PassResult],
    *,
    actor: str | None = None,
    wait: bool = False,
    clients: Clients | None = None,
    crash_hook: CrashHook | None = None,
    progress: Callable[[str, int], None] | None = None,
    details: dict[str, Any] | None = None,
    stop: Callable[[], bool] | None = None,
    lock_timeout: float = -1,
) -> PassResult:
    """Lock, record the run, execute ``body`` on a fresh Pipeline, record how it ended.

    A FatalError propagates (exit 1) after the run row says 'aborted'; cursors are only
    advanced inside ``body`` after everything before them succeeded."""
    require_sync_settings(settings)
    key = require_ledger_key(settings)
    clients = clients or clients_from(settings)
    actor = actor or settings.pipeline.actor
    checked: list[errors.SnapzenError] = []

    def preflight(db: sqlite_utils.Database) -> None:
        """Before the run is recorded: the credential and clock check (a clock ahead of
        Zendesk's raises at once: recording the run would write its wrong start time), then
        a ledger that never synced meets a Zendesk full of snapzen's tickets: exit 2. Any
        other failure of the check is recorded as an 'aborted' run."""
        try:
            check_against_zendesk(
                clients.sink, wall_clock.now, action="sync or backfill", need_evidence=False
            )
        except ClockAheadError:
            raise
        except errors.SnapzenError as exc:
            checked.append(exc)
        refuse_first_pass(db.conn, clients.sink, settings.ledger.path)

    with locked_run(
        settings,
        kind,
        actor,
        wait=wait,
        lock_timeout=lock_timeout,
        details=details,
        before=preflight,
    ) as run:
        pipeline = Pipeline(
            settings,
            run.db,
            clients.source,
            clients.sink,
            ledger_key=key,
            run_id=run.run_id,
            actor=actor,
            crash_hook=crash_hook,
            progress=progress,
            stop=stop,
        )
        run.counts = pipeline.counts.as_dict
        log.info("run_started", actor=actor, widgets=len(settings.snapengage.widgets))
        if checked:
            raise checked[0]
        # Any way out but a result leaves an 'aborted' or 'interrupted' row (commands.run):
        # cursors were not advanced, and recovery finishes whatever was in flight.
        result = body(pipeline)
        run.exit_code, run.interrupted = result.exit_code, result.interrupted
        run.details.update(
            at_risk=len(result.at_risk),
            failed_total=result.failed_total,
            unresolved=result.unresolved,
            in_progress=result.in_progress,
            future_dated=len(result.future_dated),
            cursors=result.cursors,
            interrupted=result.interrupted,
        )
        return result


def chosen_widgets(settings: Settings, given: Sequence[str] | None) -> list[str]:
    """The widgets a ``sync`` or ``backfill`` reads: those given (``--widget``, once each), or
    every configured one. ConfigError (exit 2) naming the first given that is not one of
    ``snapengage.widgets`` (a typo must not fetch, or write state for, an unknown widget), or
    when there is none at all."""
    configured = list(settings.snapengage.widgets)
    chosen = list(dict.fromkeys(given)) if given else configured
    for widget in chosen:
        if widget not in configured:
            raise errors.ConfigError(
                f"--widget {widget!r} is not one of snapengage.widgets "
                f"({', '.join(configured) or 'none configured'})"
            )
    if not chosen:
        raise errors.ConfigError(
            "setting snapengage.widgets is required (set SNAPZEN_SNAPENGAGE__WIDGETS)"
        )
    return chosen


def sync(
    settings: Settings, *, wait: bool = False, widgets: Sequence[str] | None = None, **kwargs: Any
) -> PassResult:
    chosen = chosen_widgets(settings, widgets)  # before the lock: a typo writes nothing
    return run_pass(settings, "sync", lambda p: p.sync(chosen), wait=wait, **kwargs)


# ---------------------------------------------------------------- `snapzen run`


@contextmanager
def _schedule_clock(clock: Callable[[], dt.datetime]) -> Iterator[None]:
    """Make `schedule` read ``clock`` instead of the wall clock, for the duration of a call.

    `schedule` calls ``datetime.datetime.now()`` on its module-level ``datetime`` import and
    takes no clock argument; swapping that one reference is the only way to drive it from a
    test clock, or from snapzen's clock (``support.clock.local_now``, the default: the
    process's local time moved by SNAPZEN_CLOCK_OFFSET_SECONDS)."""

    class _Clocked(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> _Clocked:
            moment = clock()
            return moment.astimezone(tz) if tz is not None else moment  # type: ignore[return-value]

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
    """Runs ``pass_fn`` now and then every ``every``; optionally ``daily`` at ``daily_at``
    (HH:MM, local time of the process: ``clock``, by default ``support.clock.local_now``;
    the image runs in UTC). The `schedule` library does the timing.

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
        self.pass_fn, self.every, self.stop = pass_fn, every, stop
        self.clock = clock or wall_clock.local_now
        self.wait = wait or (lambda seconds: stop.wait(timeout=seconds))
        self.max_passes = max_passes
        self.passes = 0
        self.last_exit_code: int | None = None
        self._sched = schedule.Scheduler()
        if daily is not None:
            try:  # `schedule` reads the time (HH:MM, hours 00-23), one check for it
                with _schedule_clock(self.clock):
                    self._sched.every().day.at(daily_at).do(self._daily, daily)
            except schedule.ScheduleValueError:
                raise errors.ConfigError(f"schedule time {daily_at!r} is not HH:MM") from None

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


def sync_pass(
    settings: Settings,
    stop: threading.Event,
    *,
    patience: dt.timedelta | None = None,
    clients: Clients | None = None,
    report: Callable[[PassResult], None] | None = None,
) -> PassFn:
    """The scheduled job: one `sync` pass under the writer lock, as an exit code.

    Errors are logged and the service goes on (the `runs` row says 'aborted' and
    `status --check` turns unhealthy), because the next pass may well succeed (an API outage);
    a configuration error is caught before the loop starts. ``report`` sees each finished
    pass (`run --format json` prints it)."""
    check_ledger(settings.ledger)  # missing, another key, newer schema: exit 2, no loop

    def attempt() -> int:
        result = sync(
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


def retention_job(settings: Settings) -> DailyJob:
    """The once-a-day job of `snapzen run` (at schedule.retention_sweep_at): the retention
    sweep, which takes the writer lock itself. It waits for the lock (a backfill releases it
    between slices) rather than skipping a whole day."""
    return functools.partial(retention.run_sweep, settings, actor="scheduler", wait=True)


def run_service(
    settings: Settings, every: str | None, report: Callable[[PassResult], None] | None = None
) -> tuple[int, int]:
    """Run until SIGTERM/SIGINT: the pass in hand finishes its batch, then this returns how
    many passes ran and the exit code. ``every``: the interval (default schedule.every);
    ``report`` sees each finished pass."""
    try:
        interval = parse_interval(every or settings.schedule.every)
    except ValueError as exc:
        raise errors.ConfigError(f"--every: {exc}") from None
    require_sync_settings(settings)  # exit 2 now, not a failed pass every interval
    require_ledger_key(settings)
    stop = threading.Event()
    with stop_on_signals(stop):
        scheduler = Scheduler(
            sync_pass(settings, stop, patience=interval, report=report),
            interval,
            stop=stop,
            daily=retention_job(settings),
            daily_at=settings.schedule.retention_sweep_at,
        )
        code = scheduler.run()
    return scheduler.passes, code
