"""The working store summed up for `snapzen status` and its health check: the outbox by widget
and status, the failed and held cases, the event counts and the runs. Read-only queries; the
report is composed in snapzen.commands.status."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.events import DECISIONS_SQL, Event
from snapzen.ledger.store.case_status import UNSENT_OR_PUSHING, CaseStatus, sql_list
from snapzen.ledger.store.rows import dict_rows
from snapzen.ledger.store.runs import COMPLETED_OUTCOMES


def by_widget(db: sqlite_utils.Database, configured: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per widget (the configured ones, then any other the outbox holds): its cursor, cases
    by status (every status, 0 when none) and the start of its oldest unsynced chat."""
    counts: dict[str, dict[CaseStatus, int]] = {}
    for widget, status, count in db.execute(
        "SELECT widget_id, status, COUNT(*) FROM cases GROUP BY widget_id, status"
    ):
        counts.setdefault(widget, dict.fromkeys(CaseStatus, 0))[CaseStatus(status)] = count
    oldest = dict(
        db.execute(
            f"""SELECT widget_id, MIN(started_at) FROM cases
                WHERE status IN {sql_list(UNSENT_OR_PUSHING)} GROUP BY widget_id"""
        ).fetchall()
    )
    cursors = dict(db.execute("SELECT widget_id, cursor_day FROM state").fetchall())
    return {
        widget: {
            "cursor": cursors.get(widget),
            "counts": counts.get(widget, dict.fromkeys(CaseStatus, 0)),
            "oldest_unsynced_started_at": oldest.get(widget),
        }
        for widget in dict.fromkeys([*configured, *counts])
    }


def cases_needing_care(db: sqlite_utils.Database, max_attempts: int) -> dict[str, Any]:
    """Withheld cases by reason, the 50 latest failed, the failed that used every attempt,
    and the raw payloads (personal data) still held: how many and the oldest first sight."""
    raw_held, raw_oldest = db.execute(
        "SELECT COUNT(*), MIN(first_seen_at) FROM cases WHERE raw IS NOT NULL"
    ).fetchone()
    return {
        "withheld_by_reason": dict(
            db.execute(
                "SELECT reason, COUNT(*) FROM cases WHERE status = ? GROUP BY reason",
                (CaseStatus.WITHHELD,),
            ).fetchall()
        ),
        "failed": dict_rows(
            db.conn,
            """SELECT case_id, widget_id, attempts, error FROM cases WHERE status = ?
               ORDER BY updated_at DESC LIMIT 50""",
            (CaseStatus.FAILED,),
        ),
        "failed_exhausted": db.execute(
            "SELECT COUNT(*) FROM cases WHERE status = ? AND attempts >= ?",
            (CaseStatus.FAILED, max_attempts),
        ).fetchone()[0],
        "raw_payloads_held": raw_held,
        "raw_oldest": raw_oldest,
    }


def event_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Every ledger row, the decisions among them, the restricted transfers among those."""
    rows, decisions, transfers = db.execute(
        f"""SELECT COUNT(*), COUNT(*) FILTER (WHERE event IN {DECISIONS_SQL}),
                   COUNT(*) FILTER (WHERE event = ?) FROM events""",
        (Event.TRANSFER.value,),
    ).fetchone()
    return {"ledger_rows": rows, "decisions": decisions, "transfers": transfers}


def last_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The latest run started (its details decoded), or None before the first."""
    run = next(db.table("runs").rows_where(order_by="started_at DESC, rowid DESC", limit=1), None)
    if run and run.get("details"):
        run["details"] = json.loads(run["details"])
    return run


def run_starts(conn: sqlite3.Connection) -> tuple[str, str, str | None] | None:
    """The run inserted last (its id and start) and the latest start of those before it."""
    row = conn.execute("SELECT run_id, started_at FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is None:
        return None
    before = conn.execute(
        "SELECT MAX(started_at) FROM runs WHERE rowid < (SELECT MAX(rowid) FROM runs)"
    ).fetchone()[0]
    return str(row[0]), str(row[1]), before


def newest_run_start(conn: sqlite3.Connection) -> str | None:
    """The latest start of any run, or None before the first."""
    row = conn.execute("SELECT MAX(started_at) FROM runs").fetchone()
    return str(row[0]) if row and row[0] else None


def last_finished(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The run that finished last: id, kind, outcome, error, finished_at."""
    rows = dict_rows(
        conn,
        """SELECT run_id, kind, outcome, error, finished_at FROM runs
           WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, rowid DESC LIMIT 1""",
    )
    return rows[0] if rows else None


def last_completed_at(conn: sqlite3.Connection) -> str | None:
    """When the latest run that did its job ('ok' or 'partial') finished."""
    marks = ", ".join("?" for _ in COMPLETED_OUTCOMES)
    sql = f"SELECT MAX(finished_at) FROM runs WHERE outcome IN ({marks})"
    found = conn.execute(sql, COMPLETED_OUTCOMES).fetchone()[0]
    return str(found) if found else None
