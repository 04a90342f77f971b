"""Chats that need a person's look, read from the outbox: those at risk of SnapEngage's
deletion (unsent past the deadline) and those dated in the future (a wrong clock, ours or the
source's: such a chat would otherwise sit pending for ever with a negative age).

Both feed the pass's exit code (3) and `snapzen status`, as do the cases still 'pushing' after
the recovery grace (``unresolved_counts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from snapzen.ledger.store.case_status import UNSENT_OR_PUSHING, CaseStatus, sql_list
from snapzen.ledger.store.cursor_rules import FUTURE_SKEW
from snapzen.ledger.store.rows import dict_rows
from snapzen.support import clock

_UNFINISHED = (
    "SELECT case_id, widget_id, started_at, status FROM cases "
    f"WHERE status IN {sql_list(UNSENT_OR_PUSHING)} AND started_at IS NOT NULL "
)


def at_risk_cases(db: sqlite_utils.Database, older_than: datetime) -> list[dict[str, Any]]:
    """Unsynced, not withheld cases whose chat started before ``older_than``."""
    sql = _UNFINISHED + "AND started_at <= ? ORDER BY started_at"
    return dict_rows(db.conn, sql, [clock.format(older_than)])


def future_dated_cases(
    db: sqlite_utils.Database, now: datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Unfinished cases whose chat starts more than ``FUTURE_SKEW`` after ``now``."""
    after = clock.format(now + FUTURE_SKEW)
    sql = _UNFINISHED + "AND started_at > ? ORDER BY started_at LIMIT ?"
    return dict_rows(db.conn, sql, [after, limit])


def unresolved_counts(
    db: sqlite_utils.Database, now: datetime, grace: timedelta
) -> tuple[int, int]:
    """(cases 'pushing' inside the recovery grace, cases 'pushing' longer than it)."""
    cutoff = clock.format(now - grace)
    within, overdue = db.execute(
        """SELECT COALESCE(SUM(pushed_at > ?), 0),
                  COALESCE(SUM(pushed_at IS NULL OR pushed_at <= ?), 0)
           FROM cases WHERE status = ?""",
        (cutoff, cutoff, CaseStatus.PUSHING),
    ).fetchone()
    return int(within), int(overdue)
