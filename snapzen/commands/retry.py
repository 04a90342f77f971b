"""The two ends of a failed case: `snapzen retry` gives it another go, `snapzen dismiss`
decides it will never be sent.

Retry: the reset (attempts 0, back to pending) runs inside the pass body, i.e. under the
writer lock and recorded in `runs` with the actor; the same pass then pushes them, so the
operator sees the outcome at once instead of at the next cron tick.

Dismiss: some failures cannot be fixed by retrying (a payload without a usable start time, a
chat the business agrees to drop). Until someone decides, the case keeps `sync` exiting 3;
dismissing it makes it terminal (`ignored`, reason "dismissed: …"), purges its raw payload,
keeps its last error for the record, and writes a `runs` row with the actor — nothing is
dropped silently.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.commands import service
from snapzen.commands.run import locked_run
from snapzen.ledger.store import queries, transitions
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import ensure_ledger, open_ledger, transaction
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.log import one_line
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import PassResult, Pipeline


def requeue(db: sqlite_utils.Database, case_ids: Sequence[str] | None, now: datetime) -> list[str]:
    """Failed cases → pending with attempts reset. ``None`` means every failed case.

    Cases whose payload was never usable (``invalid:`` ids, or no raw payload) cannot be sent;
    asking for one by id is an error, and --all-failed leaves them alone."""
    with transaction(db) as conn:
        if case_ids is None:
            chosen = queries.retryable_failed(conn)
        else:
            _check_failed(conn, case_ids, "retry")
            chosen = list(case_ids)
        transitions.reset_for_retry(conn, chosen, clock.format(now))
    return chosen


@dataclass
class RetryResult:
    requeued: list[str]  # the cases put back to pending
    result: PassResult  # the pass that pushed them

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def retry(
    settings: Settings,
    case_ids: Sequence[str] | None,
    *,
    actor: str | None = None,
    wait: bool = False,
    **kwargs: Any,
) -> RetryResult:
    """Requeue ``case_ids`` (None: all failed) and push them in one locked, recorded pass."""
    ensure_ledger(settings.ledger.path)
    if case_ids is not None:
        # Refuse a bad id before taking the lock or writing a `runs` row (exit 2, one line);
        # the same checks run again under the lock, where they count.
        with closing(open_ledger(settings.ledger, read_only=True)) as db:
            _check_failed(db.conn, case_ids, "retry")
    requeued: list[str] = []

    def body(pipeline: Pipeline) -> PassResult:
        requeued.extend(requeue(pipeline.db, case_ids, pipeline.clock()))
        pipeline.recover()
        if requeued:
            pipeline.push_ready()
        return pipeline.result()

    details = {"retry": "all-failed" if case_ids is None else list(case_ids)[:100]}
    done = service.run_pass(
        settings, "retry", body, actor=actor, wait=wait, details=details, **kwargs
    )
    return RetryResult(requeued, done)


def dismiss(
    settings: Settings,
    case_ids: Sequence[str],
    *,
    reason: str,
    actor: str,
    wait: bool = False,
    now: datetime | None = None,
) -> str:
    """Mark failed cases ignored with ``reason``; returns the run id. ConfigError (exit 2)
    for an unknown id, a case that is not failed, or an empty reason."""
    reason = one_line(reason, 200)
    if not reason:
        raise ConfigError("--reason is required: say why these cases will never be sent")
    if not case_ids:
        raise ConfigError("give at least one --case ID")
    ensure_ledger(settings.ledger.path)
    details = {"cases": list(case_ids)[:100], "reason": reason}
    clock_now = clock.reader(now)
    with (
        locked_run(
            settings,
            "dismiss",
            actor,
            wait=wait,
            now=clock_now,
            details=details,
            before=lambda db: _check_failed(db.conn, case_ids, "dismiss"),
        ) as run,
        transaction(run.db) as conn,
    ):
        transitions.dismiss_failed(
            conn, case_ids, reason, clock.format(clock_now()), run_id=run.run_id, actor=actor
        )
    return run.run_id


def _check_failed(conn: sqlite3.Connection, case_ids: Sequence[str], verb: str) -> None:
    """ConfigError (exit 2) unless every case is failed; to retry one, it must also have a
    payload that can be sent again."""
    for case_id in case_ids:
        # A case without a start time can never be sent (it would sit in pending, unseen by
        # the deadline check): only a fresh SnapEngage copy can fix it.
        row = queries.case_state(conn, case_id)
        if row is None:
            raise ConfigError(f"case {case_id} is not in the ledger database")
        if row[0] != CaseStatus.FAILED:
            raise ConfigError(f"case {case_id} is {row[0]}, not failed; nothing to {verb}")
        if verb == "retry" and not row[1]:
            raise ConfigError(f"case {case_id} has no usable payload to send again")
