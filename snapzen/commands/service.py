"""Composition root: build the real clients from settings and run a pass under the writer
lock, with a `runs` row that says how it ended. The CLI and the scheduler call these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from snapzen.commands.clients import snapengage_from, zendesk_from
from snapzen.commands.clock_guard import ClockAheadError, check_against_zendesk
from snapzen.commands.first_pass import refuse_first_pass
from snapzen.commands.run import locked_run
from snapzen.ledger.store import runs
from snapzen.support import clock as wall_clock
from snapzen.support import errors
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings, require_ledger_key, require_sync_settings
from snapzen.sync.pipeline import CrashHook, PassResult, Pipeline, Sink, Source

log = get_logger("snapzen.commands.service")


@dataclass
class Clients:
    source: Source
    sink: Sink


def build_clients(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> Clients:
    return Clients(
        source=snapengage_from(settings, sleep=sleep), sink=zendesk_from(settings, sleep=sleep)
    )


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
    clients = clients or build_clients(settings)
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
        settings, kind, actor, wait=wait, lock_timeout=lock_timeout, details=details,
        before=preflight,
    ) as run:  # fmt: skip
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
        try:
            if checked:
                raise checked[0]
            result = body(pipeline)
        except errors.SnapzenError as exc:
            # Any way out but a result leaves an 'aborted' or 'interrupted' row (commands.run):
            # cursors were not advanced, and recovery finishes whatever was in flight.
            log.error("run_aborted", error_type=type(exc).__name__, error=str(exc),
                      **pipeline.counts.as_dict())  # fmt: skip
            raise
        run.exit_code, run.interrupted = result.exit_code, result.interrupted
        run.details.update(
            at_risk=len(result.at_risk), failed_total=result.failed_total,
            unresolved=result.unresolved, in_progress=result.in_progress,
            future_dated=len(result.future_dated), cursors=result.cursors,
            interrupted=result.interrupted,
        )  # fmt: skip
        log_level = log.info if result.exit_code == 0 else log.error
        log_level = log.warning if result.interrupted else log_level
        log_level(
            "run_finished",
            outcome=runs.ended_outcome(result.exit_code, interrupted=result.interrupted),
            at_risk=len(result.at_risk),
            failed_total=result.failed_total,
            unresolved=result.unresolved,
            **pipeline.counts.as_dict(),
        )
        return result


def sync(
    settings: Settings, *, wait: bool = False, widgets: Sequence[str] | None = None, **kwargs: Any
) -> PassResult:
    return run_pass(settings, "sync", lambda p: p.sync(widgets), wait=wait, **kwargs)
