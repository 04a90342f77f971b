"""The retention sweep's last step: forget the months whose every ticket has expired.

See snapzen.ledger.rights.forget for the rule and the order of the steps. Run under the writer lock
after the sweep's deletions, so a month whose last tickets this sweep deleted is forgotten
in the same sweep; a dry run lists the months it would forget (``plan_forget``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.rights import erasure_journal, forget, holds
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
    deleted: [{period, cases}]."""
    return forget.plan(conn, as_of, settings.transfer.retention_years, held, due)


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
    if path.is_file():  # an edited journal: JournalDamaged (exit 2); an old format: migrated
        erasure_journal.prepare(path, key, db.conn)
    done = forget.reapply(db, [path], key, now=now, actor=actor, how="retention sweep (finished)")
    held = holds.active(db.conn)
    for item in forget.plan(db.conn, as_of, settings.transfer.retention_years, held):
        forget.journal(path, key, item["period"], now)
        hook("after_journal")
        done.append(
            forget.forget_period(db, item["period"], now=now, actor=actor, run_id=run_id, hook=hook)
        )
        log.info("retention_period_forgotten", period=item["period"], cases=item["cases"])
    if done:
        # Fold the WAL into the file now, so the destroyed keys' pages (overwritten there:
        # secure_delete) do not linger in the write-ahead log (best effort: a reader may hold it).
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return done
