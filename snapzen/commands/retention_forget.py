"""The retention sweep's last step: forget the months whose every ticket has expired, and
the request periods whose evidence has served (``record.request_evidence_years``).

See snapzen.ledger.rights.forget for the month rule and the order of the steps, and
snapzen.ledger.rights.request_periods for the request-period rule. Run under the writer lock
after the sweep's deletions, so a month whose last tickets this sweep deleted is forgotten
in the same sweep; a dry run lists what it would forget (``plan_forget``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.commands import copies
from snapzen.ledger.rights import erasure_journal, forget, holds, period_keys, request_periods
from snapzen.ledger.store.db import configured_key
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.retention_forget")


def plan_forget(
    conn: sqlite3.Connection,
    settings: Settings,
    as_of: Any,
    held: holds.HoldSet,
    due: Collection[str],
) -> list[dict[str, Any]]:
    """The months a sweep as of ``as_of`` would forget, once the ``due`` cases' tickets are
    deleted ([{period, cases}]), then the request periods ([{period, requests}])."""
    months = forget.plan(conn, as_of, settings.transfer.retention_years, held, due)
    return months + request_periods.plan(conn, as_of, rule(settings), held)


def rule(settings: Settings) -> request_periods.Rule:
    """The request-period rule from the settings and the copies register beside the ledger
    (a copy older than an erasure, still at its path, keeps that erasure's record)."""
    made = copies.recorded(settings.ledger.path)
    return request_periods.Rule(
        years=settings.record.request_evidence_years,
        snapengage_days=settings.snapengage.retention_days,
        copies=tuple(request_periods.Copy(c.made_at, Path(c.path).exists()) for c in made),
    )


def describe(item: dict[str, Any], *, planned: bool) -> str:
    """One line for the sweep's output about a period forgotten (or, ``planned``, due)."""
    period = str(item["period"])
    if period_keys.is_request_period(period):
        count = item.get("requests", item.get("requests_forgotten", 0))
        what = (
            f"request period {period}: its key destroyed, the evidence of {count} request(s) "
            "unlinked"
        )
        return (
            f"would forget {what} (answered and past record.request_evidence_years)"
            if (planned)
            else f"forgot {what}, {item.get('erasures_forgotten', 0)} erasure record(s) deleted"
        )
    if planned:
        return (
            f"would forget {period}: its subject-reference key destroyed and its "
            f"{item['cases']} case(s) deleted (every ticket of that month has expired)"
        )
    return (
        f"forgot {period}: subject-reference key destroyed, "
        f"{item['cases_forgotten']} case(s) deleted"
    )


def forget_due(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    as_of: Any,
    now: datetime,
    actor: str,
    run_id: str | None,
    hook: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Finish the months a killed sweep journalled, then forget every month now due.
    Returns each forgotten month's chained details. Nothing without ``ledger.key`` (the
    rights journal that keeps a month forgotten across restores is keyed by it)."""
    key = configured_key(settings.ledger)
    if key is None:
        log.warning("retention_forget_skipped", reason="ledger.key is not set")
        return []
    path = settings.ledger.erasure_journal_path
    journalled = erasure_journal.Contents()
    if path.is_file():  # an edited journal: JournalDamaged (exit 2); an old format: migrated
        journalled = erasure_journal.prepare(path, key, db.conn)
    how = "retention sweep (finished)"
    done = forget.reapply(db, journalled.forgotten, now=now, actor=actor, how=how)
    held = holds.active(db.conn)
    for item in plan_forget(db.conn, settings, as_of, held, ()):
        period = item["period"]
        ids = request_periods.evidence(db.conn, period).request_ids if "requests" in item else ()
        forget.journal(path, key, period, now, ids)
        hook("after_journal")
        done.append(
            forget.forget_period(db, period, now=now, actor=actor, run_id=run_id, hook=hook)
        )
        log.info("retention_period_forgotten", period=period)
    hook("before_compaction")
    if forget.compact_journal(db.conn, path, key, now):  # step 3: no reference kept past it
        # Older journal copies (ledger checkpoint) still hold the lines: name them (paths only).
        older = [
            c.path
            for c in copies.recorded(settings.ledger.path)
            if c.kind == copies.JOURNAL_COPY and Path(c.path).exists()
        ]
        (log.warning if older else log.info)(
            "rights_journal_compacted", older_journal_copies_still_holding=older
        )
    if done:
        # Fold the WAL into the file now, so the destroyed keys' pages (overwritten there:
        # secure_delete) do not linger in the write-ahead log (best effort: a reader may hold it).
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return done
