"""`snapzen dismiss`: a human decides a failed case will never be sent.

Some failures cannot be fixed by retrying (a payload without a usable start time, a chat the
business agrees to drop). Until someone decides, the case keeps `sync` exiting 3; dismissing
it makes it terminal (`ignored`, reason "dismissed: …"), purges its raw payload, keeps its
last error for the record, and writes a `runs` row with the actor — nothing is dropped
silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlite_utils

from snapzen.commands.run import locked_run
from snapzen.ledger.store import transitions
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import ensure_ledger, transaction
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.log import one_line
from snapzen.support.settings import Settings


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

    def only_failed(db: sqlite_utils.Database) -> None:
        for case_id in case_ids:
            row = db.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()
            if row is None:
                raise ConfigError(f"case {case_id} is not in the ledger database")
            if row[0] != CaseStatus.FAILED:
                raise ConfigError(f"case {case_id} is {row[0]}, not failed; nothing to dismiss")

    with (
        locked_run(settings, "dismiss", actor, wait=wait, now=clock_now, details=details,
                   before=only_failed) as run,
        transaction(run.db) as conn,
    ):  # fmt: skip
        transitions.dismiss_failed(
            conn, case_ids, reason, clock.format(clock_now()), run_id=run.run_id, actor=actor
        )
    return run.run_id
