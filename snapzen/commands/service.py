"""Composition root: build the real clients from settings and run a pass under the writer
lock, with a `runs` row that says how it ended. The CLI and the scheduler call these.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import sqlite_utils

from snapzen.commands.clients import snapengage_from, zendesk_from
from snapzen.commands.first_pass import refuse_first_pass
from snapzen.ledger import outbox, runs
from snapzen.ledger.locked import locked_ledger
from snapzen.support import errors
from snapzen.support.log import (
    bound_run,
    get_logger,
    once,
    one_line,
    scrub_personal,
)
from snapzen.support.memory import limit_malloc_arenas
from snapzen.support.settings import Settings, require_ledger_key, require_sync_settings
from snapzen.sync.clock_guard import ClockAheadError, ServerClock, require_clock_agrees
from snapzen.sync.pipeline import CrashHook, PassResult, Pipeline, Sink, Source, utcnow
from snapzen.sync.prepare_worker import PrepareWorker, WorkerError

log = get_logger("snapzen.commands.service")


@runtime_checkable
class CredentialCheck(Protocol):
    """A sink that can prove its credentials with one cheap call (``GET users/me``)."""

    def check_credentials(self) -> dict[str, Any]: ...


def check_credentials(sink: object, clock: Callable[[], datetime] = utcnow) -> None:
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


@contextmanager
def prepare_worker(
    settings: Settings, key: bytes, *, shared: PrepareWorker | None = None
) -> Iterator[PrepareWorker | None]:
    """A prepare worker (``pipeline.prepare_process``), stopped on leaving; ``shared`` (one
    the caller owns) is used as it is. One that cannot start is not an error: the pass
    prepares on its own thread."""
    if shared is not None:
        # One a failure put out of use (answers maybe out of step): prepare on the thread.
        yield None if shared.broken else shared
        return
    if not settings.pipeline.prepare_process:
        yield None
        return
    try:
        worker = PrepareWorker.start(settings, key)
    except WorkerError as exc:
        # The same cause every pass of `snapzen run`: a warning once per process, then debug.
        warn = log.warning if once("prepare_worker_unavailable", one_line(exc)) else log.debug
        warn("prepare_worker_unavailable", error=one_line(exc))
        yield None
        return
    try:
        yield worker
    finally:
        worker.close()


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
    worker: PrepareWorker | None = None,
) -> PassResult:
    """Lock, record the run, execute ``body`` on a fresh Pipeline, record how it ended.

    ``worker``: a prepare worker the caller owns (a backfill shares one between its slices);
    without one, the pass starts its own (``pipeline.prepare_process``) and stops it after.

    A FatalError propagates (exit 1) after the run row says 'aborted'; cursors are only
    advanced inside ``body`` after everything before them succeeded."""
    require_sync_settings(settings)
    key = require_ledger_key(settings)
    clients = clients or build_clients(settings)
    run_id = runs.new_run_id(kind)
    actor = actor or settings.pipeline.actor
    # One malloc arena for the pass's threads: without it a 100,000-chat backfill peaked over
    # 150 MB (bench/RESULTS.md, v9). Process-wide, and harmless to repeat.
    limit_malloc_arenas()
    with (
        bound_run(run_id, kind),  # every line of the pass, on every thread, carries run_id
        locked_db(settings, wait=wait, lock_timeout=lock_timeout) as db,
        prepare_worker(settings, key, shared=worker) as worker,
    ):
        checked = _preflight(clients.sink)
        # A ledger that never synced meets a Zendesk full of snapzen's tickets: exit 2.
        refuse_first_pass(db.conn, clients.sink, settings.ledger.path)
        outbox.start_run(db, run_id, kind, actor, utcnow(), details)
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
            prepare_worker=worker,
        )
        log.info("run_started", actor=actor, widgets=len(settings.snapengage.widgets))
        try:
            try:
                if checked is not None:
                    raise checked
                result = body(pipeline)
            finally:
                # A POST still out when the pass ended (an error elsewhere) gets its answer
                # recorded, so its batch keeps a job id instead of waiting for the lookup.
                # Not on Ctrl-C or a crash: the user wants out, recovery handles it.
                exc_now = sys.exc_info()[1]
                pipeline.close(collect=exc_now is None or isinstance(exc_now, Exception))
        except BaseException as exc:
            # Any way out but a result leaves an 'interrupted' (Ctrl-C) or 'aborted' (an error,
            # a crash hook) row with the exit code the process ends with: cursors were not
            # advanced, and recovery finishes whatever was in flight.
            known = isinstance(exc, errors.SnapzenError)
            # runs.error is read by ops and auditors: no email an API may have echoed back.
            error = f"{type(exc).__name__}: {scrub_personal(str(exc))}" if known else "interrupted"
            outbox.finish_run(
                db,
                run_id,
                utcnow(),
                outcome="interrupted" if isinstance(exc, KeyboardInterrupt) else "aborted",
                exit_code=errors.exit_code_of(exc),
                counts=pipeline.counts.as_dict(),
                error=error,
            )
            if known:
                log.error(
                    "run_aborted",
                    error_type=type(exc).__name__,
                    error=str(exc),
                    **pipeline.counts.as_dict(),
                )
            raise
        outcome = runs.ended_outcome(result.exit_code, interrupted=result.interrupted)
        outbox.finish_run(
            db,
            run_id,
            utcnow(),
            outcome=outcome,
            exit_code=result.exit_code,
            counts=pipeline.counts.as_dict(),
            details={
                **(details or {}),
                "at_risk": len(result.at_risk),
                "failed_total": result.failed_total,
                "unresolved": result.unresolved,
                "in_progress": result.in_progress,
                "future_dated": len(result.future_dated),
                "cursors": result.cursors,
                "interrupted": result.interrupted,
            },
        )
        log_level = log.info if result.exit_code == 0 else log.error
        log_level = log.warning if result.interrupted else log_level
        log_level(
            "run_finished",
            outcome=outcome,
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
