"""`snapzen retry`: give failed cases that exhausted their attempts another go.

The reset (attempts 0, back to pending) runs inside the pass body, i.e. under the writer lock
and recorded in `runs` with the actor; the same pass then pushes them, so the operator sees
the outcome at once instead of at the next cron tick.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.commands import service
from snapzen.ledger.store import transitions
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import ensure_ledger, open_ledger, transaction
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import PassResult, Pipeline


def requeue(db: sqlite_utils.Database, case_ids: Sequence[str] | None, now: datetime) -> list[str]:
    """Failed cases → pending with attempts reset. ``None`` means every failed case.

    Cases whose payload was never usable (``invalid:`` ids, or no raw payload) cannot be sent;
    asking for one by id is an error, and --all-failed leaves them alone."""
    with transaction(db) as conn:
        if case_ids is None:
            rows = conn.execute(
                """SELECT case_id FROM cases WHERE status = ? AND raw IS NOT NULL
                   AND started_at IS NOT NULL AND case_id NOT LIKE 'invalid:%'
                   ORDER BY case_id""",
                (CaseStatus.FAILED,),
            ).fetchall()
            chosen = [r[0] for r in rows]
        else:
            _check_ids(conn, case_ids)
            chosen = list(case_ids)
        transitions.reset_for_retry(conn, chosen, clock.format(now))
    return chosen


@dataclass
class RetryResult:
    requeued: list[str] = field(default_factory=list)
    result: PassResult | None = None

    @property
    def exit_code(self) -> int:
        return self.result.exit_code if self.result is not None else 0


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
            _check_ids(db, case_ids)
    outcome = RetryResult()

    def body(pipeline: Pipeline) -> PassResult:
        outcome.requeued = requeue(pipeline.db, case_ids, pipeline.clock())
        pipeline.recover()
        if outcome.requeued:
            pipeline.push_ready()
        return pipeline.result()

    details = {"retry": "all-failed" if case_ids is None else list(case_ids)[:100]}
    outcome.result = service.run_pass(
        settings, "retry", body, actor=actor, wait=wait, details=details, **kwargs
    )
    return outcome


def _check_ids(db: sqlite_utils.Database | sqlite3.Connection, case_ids: Sequence[str]) -> None:
    for case_id in case_ids:
        row = db.execute(
            # A case without a start time can never be sent (it would sit in pending, unseen
            # by the deadline check): only a fresh SnapEngage copy can fix it.
            "SELECT status, raw IS NOT NULL AND started_at IS NOT NULL FROM cases"
            " WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        if row is None:
            raise ConfigError(f"case {case_id} is not in the ledger database")
        if row[0] != CaseStatus.FAILED:
            raise ConfigError(f"case {case_id} is {row[0]}, not failed; nothing to retry")
        if not row[1] or case_id.startswith("invalid:"):
            raise ConfigError(f"case {case_id} has no usable payload to send again")
