"""`snapzen dismiss`: a human decides a failed case will never be sent.

Some failures cannot be fixed by retrying (a payload without a usable start time, a chat the
business agrees to drop). Until someone decides, the case keeps `sync` exiting 3; dismissing
it makes it terminal (`ignored`, reason "dismissed: …"), purges its raw payload, keeps its
last error for the record, and writes a `runs` row with the actor — nothing is dropped
silently.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from snapzen.commands import service
from snapzen.ledger import decisions
from snapzen.ledger.db import ensure_ledger, transaction
from snapzen.ledger.outbox import now_iso
from snapzen.support.errors import ConfigError
from snapzen.support.log import one_line
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import utcnow


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
    run_id = f"dismiss-{uuid.uuid4().hex[:12]}"
    stamp = now_iso(now or utcnow())
    with service.locked_db(settings, wait=wait) as db, transaction(db) as conn:
        for case_id in case_ids:
            row = conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()
            if row is None:
                raise ConfigError(f"case {case_id} is not in the ledger database")
            if row[0] != "failed":
                raise ConfigError(f"case {case_id} is {row[0]}, not failed; nothing to dismiss")
        for case_id in case_ids:
            conn.execute(
                """UPDATE cases SET status = 'ignored', reason = ?, raw = NULL,
                       raw_purged_at = ?, updated_at = ? WHERE case_id = ?""",
                (f"dismissed: {reason}", stamp, stamp, case_id),
            )
        decisions.record(
            conn,
            [
                decisions.decision(
                    "dismissed",
                    case_id,
                    stamp,
                    run_id=run_id,
                    actor=actor,
                    details={"reason": reason},
                )
                for case_id in case_ids
            ],
        )
        conn.execute(
            """INSERT INTO runs (run_id, kind, actor, started_at, finished_at, outcome,
                   exit_code, details) VALUES (?, 'dismiss', ?, ?, ?, 'ok', 0, ?)""",
            (
                run_id,
                actor,
                stamp,
                stamp,
                json.dumps({"cases": list(case_ids)[:100], "reason": reason}),
            ),
        )
        decisions.record_run(conn, run_id, stamp)
    return run_id
