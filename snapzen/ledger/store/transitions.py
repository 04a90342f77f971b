"""Status changes that a person's command makes (erase, dismiss, retry, retention).

The pass's own transitions (stage, push, settle, fail, recover) are in
``snapzen.ledger.store.outbox``; these are the others. Each runs inside the caller's transaction,
which is also where the decision it implies is chained, so the status and its explanation
are written together or not at all. Commands decide *which* cases; only these functions
write the row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event, decision
from snapzen.ledger.store.case_status import UNSENT, CaseStatus, sql_list

ERASED_REASON = "erased_art17"
# What withholding an erased person's chat writes (parameters: the time, twice): never sent,
# its raw payload purged now.
WITHHOLD_ERASED = (
    f"status = '{CaseStatus.WITHHELD}', reason = '{ERASED_REASON}', raw = NULL, "
    "raw_purged_at = ?, updated_at = ?, error = NULL"
)
_UNSENT = sql_list(UNSENT)


def withhold_for_erasure(conn: sqlite3.Connection, case_ids: Sequence[str], stamp: str) -> int:
    """Pending or failed chats of an erased person: withheld. A re-fetch cannot revive them
    (terminal cases are not re-staged). Returns how many changed; a case that moved on
    meanwhile (pushing, synced) is left alone."""
    withheld = [
        decision(Event.WITHHELD, case_id, stamp, details={"reason": ERASED_REASON})
        for case_id in case_ids
        if conn.execute(
            f"UPDATE cases SET {WITHHOLD_ERASED} WHERE case_id = ? AND status IN {_UNSENT}",
            (stamp, stamp, case_id),
        ).rowcount
    ]
    append_events(conn, withheld)
    return len(withheld)


def dismiss_failed(
    conn: sqlite3.Connection,
    case_ids: Sequence[str],
    reason: str,
    stamp: str,
    *,
    run_id: str,
    actor: str,
) -> None:
    """Failed cases a person decided will never be sent: ignored ("dismissed: <reason>"),
    raw payload purged, last error kept for the record; one ``dismissed`` decision each.
    The caller has checked that each case is failed, in the same transaction."""
    conn.executemany(
        """UPDATE cases SET status = ?, reason = ?, raw = NULL,
               raw_purged_at = ?, updated_at = ? WHERE case_id = ?""",
        [(CaseStatus.IGNORED, f"dismissed: {reason}", stamp, stamp, c) for c in case_ids],
    )
    facts: dict[str, Any] = {"run_id": run_id, "actor": actor, "details": {"reason": reason}}
    append_events(conn, [decision(Event.DISMISSED, case, stamp, **facts) for case in case_ids])


def reset_for_retry(conn: sqlite3.Connection, case_ids: Sequence[str], stamp: str) -> None:
    """Failed cases a person asked to send again: pending, attempts back to 0, no batch.
    Not a decision (the case is not settled), so nothing is chained; the run records it."""
    conn.executemany(
        """UPDATE cases SET status = ?, attempts = 0, batch_id = NULL,
               job_id = NULL, updated_at = ? WHERE case_id = ?""",
        [(CaseStatus.PENDING, stamp, case_id) for case_id in case_ids],
    )


def mark_expired(conn: sqlite3.Connection, case_id: str, stamp: str) -> bool:
    """Claim a case's ticket as deleted at the end of its retention; False when it was
    claimed already (the caller then writes no second ``expired`` event)."""
    claimed = conn.execute(
        """UPDATE cases SET expired_at = ?, updated_at = ?
           WHERE case_id = ? AND expired_at IS NULL""",
        (stamp, stamp, case_id),
    ).rowcount
    return bool(claimed)
