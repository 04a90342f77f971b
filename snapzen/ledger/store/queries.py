"""The questions commands ask the working store, read-only, one query each: which cases are
due for deletion, which tickets snapzen deleted already, what a replaced ledger left
unfinished, which failed cases may be sent again; and the outbox, events and runs summed up for
`snapzen status` and its health check (the report is composed in snapzen.commands.status).
The commands decide what to do with the answers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.events import DECISIONS_SQL, Event
from snapzen.ledger.evidence.events_table import columns
from snapzen.ledger.store.case_status import (
    RETRYABLE_FAILED,
    UNSENT_OR_PUSHING,
    CaseStatus,
    sql_list,
)
from snapzen.ledger.store.rows import chunks, dict_rows
from snapzen.ledger.store.runs import COMPLETED_OUTCOMES


def due_page(
    conn: sqlite3.Connection, cutoff: str, as_of: str, after: tuple[str, str], limit: int
) -> list[tuple[Any, ...]]:
    """Synced, unexpired cases with a ticket and a start, after ``after`` (started_at,
    case_id), oldest first: (case_id, ticket_id, widget_id, subject_ref, started_at, the
    ``retention_until`` its transfer recorded). Due by ``as_of`` when the transfer recorded
    one, else when the chat's day is on or before ``cutoff`` (the caller decides exactly)."""
    # A dry run opens read-only and so cannot migrate: before the migration nothing expired.
    not_expired = "AND c.expired_at IS NULL" if "expired_at" in columns(conn, "cases") else ""
    return conn.execute(
        f"""SELECT c.case_id, c.ticket_id, c.widget_id, c.subject_ref, c.started_at,
                   t.retention_until
            FROM cases c LEFT JOIN events t ON t.case_id = c.case_id
                                             AND t.event = '{Event.TRANSFER}'
            WHERE c.status = '{CaseStatus.SYNCED}' {not_expired} AND c.ticket_id IS NOT NULL
              AND c.started_at IS NOT NULL
              AND CASE WHEN t.retention_until IS NULL THEN c.day <= ?
                       ELSE t.retention_until <= ? END
              AND (c.started_at, c.case_id) > (?, ?)
            ORDER BY c.started_at, c.case_id LIMIT ?""",
        (cutoff, as_of, *after, limit),
    ).fetchall()


def deleted_tickets(conn: sqlite3.Connection, ticket_ids: Sequence[int]) -> dict[int, str]:
    """Of ``ticket_ids``, those an ``erased`` or ``expired`` event names, with that event."""
    found: dict[int, str] = {}
    for chunk, marks in chunks(ticket_ids):
        found.update(
            conn.execute(
                f"SELECT ticket_id, event FROM events WHERE event IN (?, ?) "
                f"AND ticket_id IN ({marks})",
                [Event.ERASED, Event.EXPIRED, *chunk],
            ).fetchall()
        )
    return found


def transfer_seq(conn: sqlite3.Connection, case_id: str) -> int | None:
    """The seq of the case's restricted-transfer event, or None when it was not one."""
    row = conn.execute(
        "SELECT seq FROM events WHERE case_id = ? AND event = ? LIMIT 1",
        (case_id, Event.TRANSFER),
    ).fetchone()
    return int(row[0]) if row else None


def ticket_unknown(conn: sqlite3.Connection, ticket_id: int) -> bool:
    """No case names the ticket, nor any transfer, erasure or expiry."""
    if conn.execute("SELECT 1 FROM cases WHERE ticket_id = ?", (ticket_id,)).fetchone():
        return False
    return not conn.execute(
        "SELECT 1 FROM events WHERE ticket_id = ? AND event IN (?, ?, ?) LIMIT 1",
        (ticket_id, Event.TRANSFER, Event.ERASED, Event.EXPIRED),
    ).fetchone()


def widget_known(conn: sqlite3.Connection, widget: str) -> bool:
    """The ledger holds a row of ``widget``."""
    found = conn.execute("SELECT 1 FROM events WHERE widget_id = ? LIMIT 1", (widget,))
    return found.fetchone() is not None


def pushing_cases(conn: sqlite3.Connection) -> list[tuple[str, str | None, str | None]]:
    """(case_id, job_id, pushed_at) of each case left 'pushing'."""
    rows = conn.execute(
        "SELECT case_id, job_id, pushed_at FROM cases WHERE status = ?", (CaseStatus.PUSHING,)
    )
    return [(str(case_id), job_id, pushed_at) for case_id, job_id, pushed_at in rows]


def earliest_unfinished(conn: sqlite3.Connection) -> str | None:
    """The first sight (or push) of the oldest case not finished (pending, pushing, failed): a
    ticket may exist for it that the ledger does not name."""
    return conn.execute(  # type: ignore[no-any-return]
        f"""SELECT MIN(COALESCE(first_seen_at, pushed_at)) FROM cases
            WHERE status IN {sql_list(UNSENT_OR_PUSHING)}"""
    ).fetchone()[0]


def case_refs(
    conn: sqlite3.Connection, case_ids: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """The subject and name references kept for ``case_ids`` (those with a subject)."""
    name = "name_ref" if "name_ref" in columns(conn, "cases") else "NULL"
    refs: dict[str, tuple[str, str | None]] = {}
    for chunk, marks in chunks(case_ids):
        for case_id, subject, named in conn.execute(
            f"""SELECT case_id, subject_ref, {name} FROM cases
                WHERE subject_ref IS NOT NULL AND case_id IN ({marks})""",
            list(chunk),
        ):
            refs[case_id] = (subject, named)
    return refs


def never_synced(conn: sqlite3.Connection) -> bool:
    """No run, no case and no event but the key binding `init` chains."""
    return bool(
        conn.execute(
            """SELECT NOT EXISTS (SELECT 1 FROM runs) AND NOT EXISTS (SELECT 1 FROM cases)
                      AND NOT EXISTS (SELECT 1 FROM events WHERE event <> ?)""",
            (Event.LEDGER_BOUND,),
        ).fetchone()[0]
    )


def newest_times(conn: sqlite3.Connection) -> list[str]:
    """The latest run start, case change and record time the ledger holds (those it has)."""
    found = conn.execute(
        """SELECT (SELECT MAX(started_at) FROM runs), (SELECT MAX(updated_at) FROM cases),
                  (SELECT MAX(recorded_at) FROM events)"""
    ).fetchone()
    return [str(stamp) for stamp in found if stamp]


def retryable_failed(conn: sqlite3.Connection) -> list[str]:
    """Failed cases that can be sent again (``case_status.RETRYABLE_FAILED``), by case id."""
    rows = conn.execute(f"SELECT case_id FROM cases WHERE {RETRYABLE_FAILED} ORDER BY case_id")
    return [str(row[0]) for row in rows]


def case_state(conn: sqlite3.Connection, case_id: str) -> tuple[str, bool] | None:
    """A case's status and whether it is a failed case that can be sent again
    (``case_status.RETRYABLE_FAILED``); None when the ledger has no such case."""
    row = conn.execute(
        f"SELECT status, {RETRYABLE_FAILED} FROM cases WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


# ---------------------------------------------------------------- summed up for status


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
