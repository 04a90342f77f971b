"""One run lifecycle: the ``runs`` row of every command that changes the ledger.

``with recorded_run(db, kind, actor) as run:`` opens the row ('running', its own transaction,
so a crash leaves it saying so), lets the body fill in its counts, details and exit code, and
records how it ended, chained (ledger.runs.finish_run), and logs it (``run_finished``, or
``run_aborted`` with the error, with the run's counts and whole-number details):
- the body returned: ``run.outcome``, or 'ok'/'partial'/'interrupted' from ``run.exit_code``
  and ``run.interrupted`` (ledger.runs.ended_outcome);
- an exception: 'aborted' with the exit code the process ends with (errors.exit_code_of) and
  the error on one line with no email address (ops and auditors read it);
- Ctrl-C (KeyboardInterrupt): 'interrupted', with the exit code the process ends with, and
  the error says "interrupted" (a SIGTERM stops a pass between steps: it returns, interrupted).
The exception is re-raised. A run that may turn out to change nothing (an erasure whose
tickets are already gone) is ``lazy``: its row is opened by ``run.begin()`` when it first
changes something, and a run never begun records nothing.

``with locked_run(settings, kind, actor) as run:`` is the same under the writer lock, with
every log line of the run carrying its id: sync, backfill and retry (service.run_pass), the
retention sweep and dismiss. Erase, init --adopt (a plain init records no run: see
commands.init) and ledger restore hold their own lock and use ``recorded_run``.

Two helpers every long command shares: ``stop_on_signals`` (the first SIGTERM/SIGINT asks
the run to stop between steps) and ``patiently`` (wait for the writer lock in short slices,
so a stop request is still noticed).
"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, TypeVar

import sqlite_utils

from snapzen.ledger.store import runs
from snapzen.ledger.store.db import locked_ledger
from snapzen.support import clock
from snapzen.support.errors import LockHeld, exit_code_of
from snapzen.support.log import bound_run, get_logger
from snapzen.support.scrub import one_line
from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.run")

ERROR_LIMIT = 300  # characters of runs.error
# When the writer lock is busy, try again this often (seconds) so a stop request is noticed.
LOCK_POLL_SECONDS = 1.0
T = TypeVar("T")


@dataclass
class Run:
    """A run in progress: what the body tells the lifecycle about how it went."""

    db: sqlite_utils.Database
    run_id: str
    kind: str
    actor: str
    now: Callable[[], datetime]
    details: dict[str, Any] = field(default_factory=dict)
    # The runs columns fetched/created/withheld/failed, and more details, read when the run
    # ends however it ends.
    counts: Callable[[], Mapping[str, int]] = dict
    facts: Callable[[], Mapping[str, Any]] = dict
    exit_code: int = 0
    outcome: str | None = None  # None: from exit_code and interrupted
    interrupted: bool = False  # stopped early on request, but ended normally
    begun: bool = False

    def begin(self) -> None:
        """Open the run's row ('running'), once."""
        if not self.begun:
            runs.start_run(self.db, self.run_id, self.kind, self.actor, self.now(), self.details)
            self.begun = True


@contextmanager
def recorded_run(
    db: sqlite_utils.Database,
    kind: str,
    actor: str,
    *,
    now: Callable[[], datetime] = clock.now,
    details: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    lazy: bool = False,
) -> Iterator[Run]:
    """Open the run's row, yield the Run, record its end (see the module docstring)."""
    run = Run(db, run_id or runs.new_run_id(kind), kind, actor, now, dict(details or {}))
    if not lazy:
        run.begin()
    try:
        yield run
    except BaseException as exc:
        if run.begun:
            error = f"{type(exc).__name__}: {exc}" if isinstance(exc, Exception) else "interrupted"
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "aborted"
            _finish(run, outcome, exit_code_of(exc), one_line(error, ERROR_LIMIT))
        raise
    if run.begun:
        outcome = run.outcome or runs.ended_outcome(run.exit_code, interrupted=run.interrupted)
        _finish(run, outcome, run.exit_code)


def _finish(run: Run, outcome: str, exit_code: int, error: str | None = None) -> None:
    """Record how the run ended, chained, and log it with its whole-number facts."""
    counts, details = run.counts(), {**run.details, **run.facts()}
    runs.finish_run(
        run.db,
        run.run_id,
        run.now(),
        outcome=outcome,
        exit_code=exit_code,
        counts=counts,
        error=error,
        details=details,
    )
    ints = {k: v for k, v in details.items() if type(v) is int} | dict(counts)
    # The run it ends, as on every line within a run (a locked_run's are bound; not these).
    facts: dict[str, Any] = {"run_id": run.run_id, "run_kind": run.kind, **ints}
    if error is not None:
        log.error("run_aborted", outcome=outcome, exit_code=exit_code, error=error, **facts)
        return
    level = log.info if exit_code == 0 else log.error
    level = log.warning if run.interrupted else level
    level("run_finished", outcome=outcome, exit_code=exit_code, **facts)


@contextmanager
def locked_run(
    settings: Settings,
    kind: str,
    actor: str,
    *,
    wait: bool = False,
    lock_timeout: float = -1,
    now: Callable[[], datetime] = clock.now,
    details: Mapping[str, Any] | None = None,
    before: Callable[[sqlite_utils.Database], None] | None = None,
) -> Iterator[Run]:
    """``recorded_run`` on the ledger opened under the writer lock (locked before it is
    opened: ledger.locked), every log line bound to the run's id; ``before`` runs under the
    lock before the run's row is opened (a check that must not record a run when it fails)."""
    run_id = runs.new_run_id(kind)
    with (
        bound_run(run_id, kind),
        locked_ledger(settings.ledger, wait=wait, timeout=lock_timeout) as db,
    ):
        if before is not None:
            before(db)
        with recorded_run(db, kind, actor, now=now, details=details, run_id=run_id) as run:
            yield run


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
    attempt: Callable[[], T], stop: threading.Event, patience: timedelta | None
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
        except LockHeld:
            if deadline is not None and time.monotonic() >= deadline:
                return None
    return None
