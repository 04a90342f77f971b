"""Composition root: build the real clients from settings and run a pass under the writer
lock, with a `runs` row that says how it ended. The CLI and the scheduler call these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import sqlite_utils

from snapzen.commands.clients import snapengage_from, zendesk_from
from snapzen.commands.clock_guard import ClockAheadError, ServerClock, require_clock_agrees
from snapzen.commands.first_pass import refuse_first_pass
from snapzen.commands.run import recorded_run
from snapzen.ledger.store import runs
from snapzen.ledger.store.locked import locked_ledger
from snapzen.support import clock as wall_clock
from snapzen.support import errors
from snapzen.support.log import (
    bound_run,
    get_logger,
)
from snapzen.support.settings import Settings, require_ledger_key, require_sync_settings
from snapzen.sync.pipeline import CrashHook, PassResult, Pipeline, Sink, Source

log = get_logger("snapzen.commands.service")


@runtime_checkable
class CredentialCheck(Protocol):
    """A sink that can prove its credentials with one cheap call (``GET users/me``)."""

    def check_credentials(self) -> dict[str, Any]: ...


def check_credentials(sink: object, clock: Callable[[], datetime] = wall_clock.now) -> None:
    """At the start of every pass: a wrong or expired token aborts the pass (exit 1, one
    line, an 'aborted' run that turns `status --check` unhealthy) even when nothing is due,
    instead of exiting 0 until the day a chat is. Sinks without credentials (the dry run's
    stand-in) have nothing to check.

    The same answer's ``Date`` then checks the clock (``clock_guard``): a clock ahead of
    Zendesk's raises ClockAheadError before anything is fetched or decided, so no chat still
    in progress looks finished."""
    if isinstance(sink, CredentialCheck):
        user = sink.check_credentials()
        log.info("zendesk_credentials_ok", user_id=user.get("id"), role=user.get("role"))
        if isinstance(sink, ServerClock):
            require_clock_agrees(
                clock(), sink.server_time(), action="sync or backfill", need_evidence=False
            )


@dataclass
class Clients:
    source: Source
    sink: Sink


def build_clients(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> Clients:
    return Clients(
        source=snapengage_from(settings, sleep=sleep), sink=zendesk_from(settings, sleep=sleep)
    )


@contextmanager
def locked_db(
    settings: Settings, *, wait: bool = False, lock_timeout: float = -1
) -> Iterator[sqlite_utils.Database]:
    """The ledger under the writer lock, locked before it is opened (ledger.locked)."""
    with locked_ledger(settings.ledger, wait=wait, timeout=lock_timeout) as db:
        yield db


def _preflight(sink: object) -> errors.SnapzenError | None:
    """The credential and clock check, before the run is recorded. A clock ahead of
    Zendesk's raises at once: recording the run would write its wrong start time into the
    ledger. Any other failure is returned, to be recorded as an 'aborted' run."""
    try:
        check_credentials(sink)
    except ClockAheadError:
        raise
    except errors.SnapzenError as exc:
        return exc
    return None


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
    run_id = runs.new_run_id(kind)
    actor = actor or settings.pipeline.actor
    with (
        bound_run(run_id, kind),  # every line of the pass, on every thread, carries run_id
        locked_db(settings, wait=wait, lock_timeout=lock_timeout) as db,
    ):
        checked = _preflight(clients.sink)
        # A ledger that never synced meets a Zendesk full of snapzen's tickets: exit 2.
        refuse_first_pass(db.conn, clients.sink, settings.ledger.path)
        with recorded_run(db, kind, actor, details=details, run_id=run_id) as run:
            pipeline = Pipeline(
                settings,
                db,
                clients.source,
                clients.sink,
                ledger_key=key,
                run_id=run_id,
                actor=actor,
                crash_hook=crash_hook,
                progress=progress,
                stop=stop,
            )
            run.counts = pipeline.counts.as_dict
            log.info("run_started", actor=actor, widgets=len(settings.snapengage.widgets))
            try:
                if checked is not None:
                    raise checked
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
