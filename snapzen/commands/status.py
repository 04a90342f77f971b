"""What `snapzen status` reports, computed from the database alone (no network)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence import derogations, reconciliation
from snapzen.ledger.evidence.events import DECISIONS_SQL, Event
from snapzen.ledger.rights import requests
from snapzen.ledger.store import alerts, outbox
from snapzen.ledger.store.case_flags import open_flags
from snapzen.ledger.store.case_status import UNSENT_OR_PUSHING, CaseStatus, sql_list
from snapzen.ledger.store.cursor_rules import check_clock
from snapzen.ledger.store.db import open_ledger
from snapzen.support import clock
from snapzen.support.settings import Settings
from snapzen.sync.results import log_at_risk

STATUSES = tuple(CaseStatus)  # the report's column order is the enum's
# `ledger reconcile` is suggested weekly; status says so once the last check is older.
RECONCILE_DUE_AFTER = timedelta(days=8)


def _age_seconds(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    moment = clock.parse(iso)
    return round((now - moment).total_seconds(), 1)


def collect_status(db: sqlite_utils.Database, settings: Settings, now: datetime) -> dict[str, Any]:
    widgets = list(
        dict.fromkeys(
            [
                *settings.snapengage.widgets,
                *(r[0] for r in db.execute("SELECT DISTINCT widget_id FROM cases")),
            ]
        )
    )
    per_widget: dict[str, Any] = {}
    for widget in widgets:
        counts = dict.fromkeys(STATUSES, 0)
        for status, number in db.execute(
            "SELECT status, COUNT(*) FROM cases WHERE widget_id = ? GROUP BY status", (widget,)
        ):
            counts[status] = number
        oldest = db.execute(
            f"""SELECT MIN(started_at) FROM cases WHERE widget_id = ?
               AND status IN {sql_list(UNSENT_OR_PUSHING)}""",
            (widget,),
        ).fetchone()[0]
        cursor = outbox.get_cursor(db, widget)
        per_widget[widget] = {
            "cursor": cursor.isoformat() if cursor else None,
            "counts": counts,
            "oldest_unsynced_started_at": oldest,
            "oldest_unsynced_age_seconds": _age_seconds(oldest, now),
        }
    withheld_by_reason = dict(
        db.execute(
            "SELECT reason, COUNT(*) FROM cases WHERE status = ? GROUP BY reason",
            (CaseStatus.WITHHELD,),
        ).fetchall()
    )
    failed = [
        dict(zip(("case_id", "widget_id", "attempts", "error"), row, strict=True))
        for row in db.execute(
            """SELECT case_id, widget_id, attempts, error FROM cases WHERE status = ?
               ORDER BY updated_at DESC LIMIT 50""",
            (CaseStatus.FAILED,),
        )
    ]
    exhausted = db.execute(
        "SELECT COUNT(*) FROM cases WHERE status = ? AND attempts >= ?",
        (CaseStatus.FAILED, settings.pipeline.max_attempts),
    ).fetchone()[0]
    raw_held, raw_oldest = db.execute(
        "SELECT COUNT(*), MIN(first_seen_at) FROM cases WHERE raw IS NOT NULL"
    ).fetchone()
    deadline = now - timedelta(days=settings.pipeline.deadline_days)
    at_risk = alerts.at_risk_cases(db, deadline)
    last_run_row = db.execute("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1")
    names = [d[0] for d in last_run_row.description]
    last = last_run_row.fetchone()
    last_run = dict(zip(names, last, strict=True)) if last else None
    if last_run and last_run.get("details"):
        last_run["details"] = json.loads(last_run["details"])
    # The three counts of docs/cli.md ("Counts"): every ledger row, the decisions among
    # them, and the restricted transfers among those.
    ledger_rows, decision_rows, transfer_rows = db.execute(
        f"""SELECT COUNT(*), COUNT(*) FILTER (WHERE event IN {DECISIONS_SQL}),
                   COUNT(*) FILTER (WHERE event = ?) FROM events""",
        (Event.TRANSFER.value,),
    ).fetchone()
    # Art. 49 is the exception: its use shows in status, by recipient (all time, last run).
    derogated_last = derogations.by_recipient(db.conn, last_run["run_id"]) if last_run else {}
    # Imports whose answer was lost: inside the recovery grace they are work in progress,
    # after it they need a look.
    grace = timedelta(seconds=settings.zendesk.recovery_grace_seconds)
    in_progress, unresolved = alerts.unresolved_counts(db, now, grace)
    clock_warning = _clock_warning(db, now)
    # Unfinished chats dated in the future: they would sit pending for ever with a negative
    # age and a healthy status (a source clock, or ours, is wrong).
    future = alerts.future_dated_cases(db, now)
    # Data-subject requests past their Art. 12(3) deadline (pauses and extension counted).
    overdue = [r.request_id for r in requests.list_requests(db.conn, today=now.date())
               if r.overdue(now.date())]  # fmt: skip
    return {
        "generated_at": clock.format(now),
        "database": str(settings.ledger.path),
        "widgets": per_widget,
        "withheld_by_reason": withheld_by_reason,
        "failed": failed,
        "failed_exhausted": exhausted,
        "raw_payloads_held": raw_held,
        "raw_oldest_age_seconds": _age_seconds(raw_oldest, now),
        "deadline_days": settings.pipeline.deadline_days,
        "at_risk": at_risk[:100],
        "at_risk_count": len(at_risk),
        "ledger_rows": ledger_rows,
        "decisions": decision_rows,
        "transfers": transfer_rows,
        "imports_in_progress": in_progress,
        "imports_unresolved": unresolved,
        "last_run": last_run,
        "derogation_transfers": derogations.by_recipient(db.conn),
        "derogation_transfers_last_run": derogated_last,
        "flagged": open_flags(db),  # cases a person must decide (several tickets, ...)
        "clock_warning": clock_warning,
        "future_dated": future,
        "requests_overdue": overdue,
        **_reconcile(db, now),
    }


def _reconcile(db: sqlite_utils.Database, now: datetime) -> dict[str, Any]:
    """The last `ledger reconcile` check, and whether one is due: the last is older than
    RECONCILE_DUE_AFTER, or none ran and the ledger's first activity is."""
    last = reconciliation.last_reconciliation(db.conn)
    since = last["finished_at"] if last else reconciliation.earliest_activity(db.conn)
    age = _age_seconds(since, now)
    due = age is not None and age > RECONCILE_DUE_AFTER.total_seconds()
    return {"last_reconcile": last, "reconcile_due": due}


def _clock_warning(db: sqlite_utils.Database, now: datetime) -> str | None:
    """A clock that read earlier than a run already recorded: the newest run (by insertion)
    started before an older one did, or this clock reads before the latest run start."""
    row = db.execute("SELECT run_id, started_at FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is None:
        return None
    run_id, started = row[0], clock.parse_optional(row[1])
    before = clock.parse_optional(
        db.execute(
            "SELECT MAX(started_at) FROM runs WHERE rowid < (SELECT MAX(rowid) FROM runs)"
        ).fetchone()[0]
    )
    latest = max(filter(None, (started, before)), default=None)
    for moment, earlier, who in ((started, before, f"run {run_id}"), (now, latest, "the clock")):
        behind = check_clock(moment, earlier).behind_by if moment else None
        if behind is not None and moment is not None:
            return (
                f"{who} read {clock.format(moment)}, {behind} earlier than a run already "
                "recorded: the system clock is or was wrong (cursors were not moved past real "
                "data; check NTP)"
            )
    return None


def status_exit_code(report: dict[str, Any]) -> int:
    """3 when something needs a human: cases at risk of deletion, failures, imports still
    unresolved after the recovery grace, cases flagged (several tickets for one case),
    unfinished chats dated in the future, or data-subject requests past their deadline."""
    needs_a_look = (
        report["at_risk_count"]
        or report["failed"]
        or report.get("imports_unresolved")
        or report.get("flagged")
        or report.get("future_dated")
        or report.get("requests_overdue")
    )
    return 3 if needs_a_look else 0


def read_status(settings: Settings, now: datetime) -> dict[str, Any]:
    """`snapzen status`: the report from the ledger opened read-only (a reader: no lock, no
    write); cases at risk are logged as well."""
    report = collect_status(open_ledger(settings.ledger, read_only=True), settings, now)
    log_at_risk(report["at_risk"])
    return report
