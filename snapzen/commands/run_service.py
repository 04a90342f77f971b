"""`snapzen run`: the service: one sync pass now, then one every interval, and the retention
sweep once a day, until SIGTERM/SIGINT (snapzen.commands.scheduler drives the passes)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from snapzen.commands import retention
from snapzen.commands.scheduler import DailyJob, Scheduler, stop_on_signals, sync_pass
from snapzen.support import errors
from snapzen.support.settings import (
    Settings,
    parse_interval,
    require_ledger_key,
    require_sync_settings,
)
from snapzen.sync.pipeline import PassResult


def retention_job(settings: Settings) -> DailyJob:
    """The once-a-day job of `snapzen run` (at schedule.retention_sweep_at, local time; the
    image runs in UTC): the retention sweep, which takes the writer lock itself. It waits for
    the lock (a backfill releases it between slices) rather than skipping a whole day."""
    return functools.partial(retention.run_sweep, settings, actor="scheduler", wait=True)


@dataclass
class Stopped:
    passes: int
    exit_code: int


def run_service(
    settings: Settings, every: str | None, report: Callable[[PassResult], None] | None = None
) -> Stopped:
    """Run until SIGTERM/SIGINT: the pass in hand finishes its batch, then this returns.
    ``every``: the interval (default schedule.every); ``report`` sees each finished pass."""
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
    return Stopped(scheduler.passes, code)
