"""What `snapzen status` reports, and what monitoring reads: `status --format prometheus`
(text exposition format 0.0.4: templates/status_metrics.txt over the same report) and
`status --check` (a container health check, its own few queries on a plain read-only
connection, so that it answers even for a ledger the report cannot open). All from the
database alone: no network, no lock, read-only, so a scrape never waits for or disturbs a
running sync."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.commands.reconcile_check import Kind
from snapzen.commands.summaries import span
from snapzen.ledger.evidence import derogations, reconciliation
from snapzen.ledger.rights import erasure_journal, requests
from snapzen.ledger.rights.period_keys import legacy_rows
from snapzen.ledger.store import alerts, queries, runs
from snapzen.ledger.store.case_flags import open_flags
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.cursor_rules import check_clock
from snapzen.ledger.store.db import open_ledger
from snapzen.support import clock
from snapzen.support.settings import Settings, parse_interval
from snapzen.support.sqlite_uri import read_only_uri
from snapzen.sync.results import log_at_risk

STATUSES = tuple(CaseStatus)  # the report's column order is the enum's
# `ledger reconcile` is suggested weekly; status says so once the last check is older.
RECONCILE_DUE_AFTER = timedelta(days=8)
# The report's entries of which any one, when not empty or zero, makes status exit 3.
NEEDS_A_LOOK = (
    "at_risk_count",
    "failed",
    "imports_unresolved",
    "flagged",
    "future_dated",
    "requests_overdue",
    "rights_journal_behind",
)


def _age_seconds(iso: str | None, now: datetime) -> float | None:
    return round((now - clock.parse(iso)).total_seconds(), 1) if iso else None


def collect_status(db: sqlite_utils.Database, settings: Settings, now: datetime) -> dict[str, Any]:
    widgets = queries.by_widget(db, settings.snapengage.widgets)
    for info in widgets.values():
        info["oldest_unsynced_age_seconds"] = _age_seconds(info["oldest_unsynced_started_at"], now)
    care = queries.cases_needing_care(db, settings.pipeline.max_attempts)
    raw_oldest = care.pop("raw_oldest")  # shown as an age, not as the first-seen time
    at_risk = alerts.at_risk_cases(db, now - timedelta(days=settings.pipeline.deadline_days))
    last_run = queries.last_run(db)
    # Imports whose answer was lost: inside the recovery grace they are work in progress,
    # after it they need a look.
    grace = timedelta(seconds=settings.zendesk.recovery_grace_seconds)
    in_progress, unresolved = alerts.unresolved_counts(db, now, grace)
    # Data-subject requests past their Art. 12(3) deadline (pauses and extension counted).
    today = now.date()
    overdue = [
        r.request_id for r in requests.list_requests(db.conn, today=today) if r.overdue(today)
    ]
    return {
        "generated_at": clock.format(now),
        "database": str(settings.ledger.path),
        "widgets": widgets,
        **care,
        "raw_oldest_age_seconds": _age_seconds(raw_oldest, now),
        "deadline_days": settings.pipeline.deadline_days,
        "at_risk": at_risk[:100],
        "at_risk_count": len(at_risk),
        # The three counts of docs/cli.md ("Counts"): every ledger row, the decisions among
        # them, and the restricted transfers among those.
        **queries.event_counts(db),
        "imports_in_progress": in_progress,
        "imports_unresolved": unresolved,
        "last_run": last_run,
        # Art. 49 is the exception: its use shows in status, by recipient (all time, last run).
        "derogation_transfers": derogations.by_recipient(db.conn),
        "derogation_transfers_last_run": (
            derogations.by_recipient(db.conn, last_run["run_id"]) if last_run else {}
        ),
        "flagged": open_flags(db),  # cases a person must decide (several tickets, ...)
        "clock_warning": _clock_warning(db.conn, now),
        # Unfinished chats dated in the future: they would sit pending for ever with a
        # negative age and a healthy status (a source clock, or ours, is wrong).
        "future_dated": alerts.future_dated_cases(db, now),
        "requests_overdue": overdue,
        # Rows chained before period keys: linkable by whoever holds ledger.key (rights).
        "legacy_references": _legacy_references(db.conn),
        # Erasures or request events the rights journal lacks (a writer killed after its
        # commit): a backup restored now would not re-apply them.
        "rights_journal_behind": _journal_behind(db.conn, settings),
        **_reconcile(db, now),
    }


def _legacy_references(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The rows chained before period keys (their count, days, and what it means); None
    when there are none."""
    count, first, last = legacy_rows(conn)
    if not count:
        return None
    note = (
        f"{count} ledger row(s) recorded {first} to {last}, before period keys, carry the "
        "reference the ledger key recomputes from an email: forgetting their period unlinks "
        "them from lookups, but whoever holds ledger.key and an email can still link them "
        'until the ledger is replaced (docs/data-subject-rights.md, "Legacy references")'
    )
    return {"rows": count, "first": first, "last": last, "note": note}


def _journal_behind(conn: sqlite3.Connection, settings: Settings) -> dict[str, Any] | None:
    """What the rights journal lacks of this ledger's erasures and request events (links
    checked, not MACs: status has no need of the key), with the fix; None when it has all."""
    path = settings.ledger.erasure_journal_path
    try:
        behind = erasure_journal.lacking(conn, erasure_journal.read(path, None, known=None))
    except erasure_journal.JournalDamaged as exc:
        return {"erasures": 0, "events": 0, "note": f"{exc}: restore it from a checkpoint copy"}
    if not behind.erasures and not behind.requests:
        return None
    note = (
        f"the rights journal {path} lacks {len(behind.erasures)} erasure(s) and "
        f"{len(behind.requests)} request event(s) this ledger committed (a writer stopped "
        "after its commit): a backup restored now would not re-apply them; run "
        "`snapzen ledger reapply-erasures` (or any erase or checkpoint) to append them"
    )
    return {"erasures": len(behind.erasures), "events": len(behind.requests), "note": note}


def _reconcile(db: sqlite_utils.Database, now: datetime) -> dict[str, Any]:
    """The last `ledger reconcile` check, and whether one is due: the last is older than
    RECONCILE_DUE_AFTER, or none ran and the ledger's first activity is."""
    last = reconciliation.last_reconciliation(db.conn)
    since = last["finished_at"] if last else reconciliation.earliest_activity(db.conn)
    age = _age_seconds(since, now)
    due = age is not None and age > RECONCILE_DUE_AFTER.total_seconds()
    return {"last_reconcile": last, "reconcile_due": due}


def _clock_warning(conn: sqlite3.Connection, now: datetime) -> str | None:
    """A clock that read earlier than a run already recorded: the newest run (by insertion)
    started before an older one did, or this clock reads before the latest run start."""
    starts = queries.run_starts(conn)
    if starts is None:
        return None
    run_id, started, before = starts[0], clock.parse(starts[1]), clock.parse_optional(starts[2])
    latest = max(filter(None, (started, before)), default=None)
    for moment, earlier, who in ((started, before, f"run {run_id}"), (now, latest, "the clock")):
        behind = check_clock(moment, earlier)
        if behind is not None:
            return (
                f"{who} read {clock.format(moment)}, {behind} earlier than a run already "
                "recorded: the system clock is or was wrong (cursors were not moved past real "
                "data; check NTP)"
            )
    return None


def status_exit_code(report: dict[str, Any]) -> int:
    """3 when something needs a human: cases at risk of deletion, failures, imports still
    unresolved after the recovery grace, cases flagged (several tickets for one case),
    unfinished chats dated in the future, data-subject requests past their deadline, or a
    rights journal behind the ledger (NEEDS_A_LOOK)."""
    return 3 if any(report.get(key) for key in NEEDS_A_LOOK) else 0


def read_status(settings: Settings, now: datetime) -> dict[str, Any]:
    """`snapzen status`: the report from the ledger opened read-only (a reader: no lock, no
    write, closed before it returns); cases at risk are logged as well."""
    with open_ledger(settings.ledger, read_only=True) as db:
        report = collect_status(db, settings, now)
    log_at_risk(report["at_risk"])
    return report


# ---------------------------------------------------------------- prometheus


def _label(value: str) -> str:
    """A label value as the exposition format quotes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _epoch(iso: str | None) -> float | None:
    return clock.parse(iso).timestamp() if iso else None


def render_prometheus(report: dict[str, Any]) -> str:
    """Prometheus text format from a `collect_status` report (templates/status_metrics.txt)."""
    from snapzen.commands.templates import TEMPLATES  # lazy: jinja2 (start-up time)

    run = report.get("last_run") or {}
    checked = report.get("last_reconcile") or {}
    return TEMPLATES.get_template("status_metrics.txt").render(
        r=report,
        run=run,
        started=_epoch(run.get("started_at")),
        finished=_epoch(run.get("finished_at")),
        reconciled=_epoch(checked.get("finished_at")),
        findings=checked.get("findings") or {},
        statuses=STATUSES,
        outcomes=runs.RUN_OUTCOMES,
        kinds=[kind.value for kind in Kind],
        label=_label,
    )


# ---------------------------------------------------------------- health check


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str


def check_health(path: Path, settings: Settings, now: datetime) -> Health:
    """Fast, read-only verdict for a HEALTHCHECK. Unhealthy (with one line) when the database
    is missing or unreadable, the last finished run aborted or was interrupted, no run
    completed within three schedule intervals, or chats are at risk of SnapEngage's
    deletion."""
    if not path.exists():
        return Health(False, f"ledger database {path} does not exist (create it: snapzen init)")
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    except sqlite3.Error as exc:
        return Health(False, f"ledger database {path} cannot be opened: {exc}")
    try:
        return _verdict(conn, settings, now)
    except sqlite3.Error as exc:
        return Health(False, f"ledger database {path} is unreadable: {exc}")
    finally:
        conn.close()


def _verdict(conn: sqlite3.Connection, settings: Settings, now: datetime) -> Health:
    last = queries.last_finished(conn)
    if last is not None and last["outcome"] == "aborted":
        reason = last["error"] or "no reason"
        return Health(False, f"last run {last['run_id']} ({last['kind']}) aborted: {reason}")
    if last is not None and last["outcome"] == "interrupted":
        return Health(
            False,
            f"last run {last['run_id']} ({last['kind']}) was interrupted before it finished "
            "(exit code 1): the next run, or the same command again, does the rest",
        )
    window = 3 * parse_interval(settings.schedule.every)
    completed = queries.last_completed_at(conn)
    if completed is None:
        return Health(False, "no run has completed yet")
    age = now - clock.parse(completed)
    if age > window:
        return Health(
            False,
            f"no run completed in {span(age.total_seconds())} (more than 3 x schedule.every "
            f"{settings.schedule.every})",
        )
    at_risk = alerts.at_risk_cases(
        sqlite_utils.Database(conn), now - timedelta(days=settings.pipeline.deadline_days)
    )
    if at_risk:
        oldest = min(case["case_id"] for case in at_risk)
        return Health(
            False,
            f"{len(at_risk)} case(s) unsynced for more than {settings.pipeline.deadline_days} "
            f"days are at risk of SnapEngage's deletion (e.g. {oldest})",
        )
    return Health(True, f"healthy: last run completed {span(age.total_seconds())} ago")
