"""The sync pass's clock checks and cursor moves (rules in ``ledger.cursor_rules``).

Kept out of the pipeline so the pass itself only calls them: one check when a pass starts
(is the clock earlier than a run already recorded?) and one cursor move per widget at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.ledger.cursor_rules import check_clock, utc_day
from snapzen.support.log import get_logger

log = get_logger(__name__)


def _parse(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def latest_other_run(db: sqlite_utils.Database, run_id: str) -> datetime | None:
    row = db.execute("SELECT MAX(started_at) FROM runs WHERE run_id != ?", (run_id,)).fetchone()
    return _parse(row[0] if row else None)


def warn_if_clock_behind(db: sqlite_utils.Database, now: datetime, run_id: str) -> date:
    """Today (UTC) for this pass; logs at error when the clock reads earlier than a run
    already recorded. The pass still runs: its windows start at the cursors minus the
    overlap (``cursor_rules.fetch_window``), so nothing is skipped; `status` shows it too."""
    last = latest_other_run(db, run_id)
    check = check_clock(now, last)
    if not check.ok and check.behind_by is not None and last is not None:
        log.error(
            "clock_behind_last_run",
            now=outbox.now_iso(now),
            last_run_started_at=outbox.now_iso(last),
            behind_seconds=round(check.behind_by.total_seconds()),
            hint="the system clock is wrong now or was wrong at the last run; check NTP",
        )
    return utc_day(now)


def advance_cursors(
    db: sqlite_utils.Database,
    widgets: Sequence[str],
    today: date,
    max_attempts: int,
    now: datetime,
) -> dict[str, str]:
    """Advance each widget's cursor after a complete pass; widgets with no chat read yet keep
    none (absent from the answer)."""
    moved: dict[str, str] = {}
    for widget in widgets:
        cursor = outbox.advance_cursor(db, widget, today, max_attempts, now)
        if cursor is not None:
            moved[widget] = cursor.isoformat()
    return moved
