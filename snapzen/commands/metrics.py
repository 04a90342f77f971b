"""What monitoring reads: `status --format prometheus` (text exposition format 0.0.4) and
`status --check` (a container health check). Both come from the database alone: no network,
no lock, read-only, so a scrape never waits for or disturbs a running sync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from snapzen.commands.reconcile_check import Kind
from snapzen.commands.status import STATUSES
from snapzen.ledger.store import runs
from snapzen.ledger.store.case_status import UNSENT_OR_PUSHING, sql_list
from snapzen.support import clock
from snapzen.support.settings import Settings, parse_interval
from snapzen.support.sqlite_uri import read_only_uri

# The run outcomes and which of them did their job: one list (snapzen.ledger.store.runs).
RUN_OUTCOMES = runs.RUN_OUTCOMES
COMPLETED = runs.COMPLETED_OUTCOMES


def _labels(labels: dict[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _number(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _epoch(iso: str | None) -> float | None:
    return clock.parse(iso).timestamp() if iso else None


# One sample each, read from the report: (metric, help, report key).
_SCALARS = (
    ("snapzen_cases_at_risk",
     "Unsynced chats older than deadline_days, at risk of SnapEngage's deletion.", "at_risk_count"),
    ("snapzen_deadline_days",
     "Configured age at which an unsynced chat counts as at risk.", "deadline_days"),
    ("snapzen_cases_failed_exhausted",
     "Failed cases that used all their attempts and need `snapzen retry`.", "failed_exhausted"),
    ("snapzen_raw_payloads_held",
     "Cases whose raw SnapEngage payload (personal data) is still stored.", "raw_payloads_held"),
    ("snapzen_ledger_rows",
     "Ledger rows: every row of the chained ledger, whatever its event.", "ledger_rows"),
    ("snapzen_ledger_decisions",
     "Ledger rows that record what became of a chat (transfer, sent, withheld, ignored, ...).",
     "decisions"),
    ("snapzen_ledger_transfers",
     "Ledger rows that are restricted transfers (event transfer), a subset of the decisions.",
     "transfers"),
)  # fmt: skip


def render_prometheus(report: dict[str, Any]) -> str:
    """Prometheus text format from a `collect_status` report."""
    lines: list[str] = []

    def family(
        name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float | int]]
    ) -> None:
        lines.extend((f"# HELP {name} {help_text}", f"# TYPE {name} gauge"))
        lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)

    widgets: dict[str, Any] = report["widgets"]
    family(
        "snapzen_cases",
        "Cases in the outbox by status and widget.",
        (
            ({"widget": widget, "status": status}, info["counts"].get(status, 0))
            for widget, info in widgets.items()
            for status in STATUSES
        ),
    )
    family(
        "snapzen_oldest_unsynced_age_seconds",
        "Age of the oldest pending, pushing or failed chat per widget (0 when none).",
        (
            ({"widget": widget}, info["oldest_unsynced_age_seconds"] or 0.0)
            for widget, info in widgets.items()
        ),
    )
    for name, help_text, key in _SCALARS:
        family(name, help_text, [({}, report[key])])
    family(
        "snapzen_derogation_transfers",
        "Transfers sent under an Art. 49 derogation, by recipient (all time; the exception).",
        (({"recipient": r}, n) for r, n in report.get("derogation_transfers", {}).items()),
    )
    family(
        "snapzen_derogation_transfers_last_run",
        "Transfers the last run sent under an Art. 49 derogation, by recipient.",
        (({"recipient": r}, n) for r, n in report.get("derogation_transfers_last_run", {}).items()),
    )
    family(
        "snapzen_requests_overdue",
        "Open data-subject requests past their Art. 12(3) deadline (`ledger requests`).",
        [({}, len(report.get("requests_overdue", [])))],
    )
    run = report.get("last_run") or {}
    started = _epoch(run.get("started_at"))
    finished = _epoch(run.get("finished_at"))
    family(
        "snapzen_last_run_timestamp_seconds",
        "Unix time the last run finished (started, while it runs); 0 before the first run.",
        [({}, finished or started or 0.0)],
    )
    family(
        "snapzen_last_run_outcome",
        f"1 for the outcome of the last run ({', '.join(RUN_OUTCOMES)}), else 0.",
        (({"outcome": o}, 1 if run.get("outcome") == o else 0) for o in RUN_OUTCOMES),
    )
    family(
        "snapzen_last_run_exit_code",
        "Exit code of the last finished run (-1 while running or before the first run).",
        [({}, run["exit_code"] if run.get("exit_code") is not None else -1)],
    )
    family(
        "snapzen_last_run_duration_seconds",
        "Wall time of the last finished run (0 while running or before the first run).",
        [({}, round(finished - started, 3) if finished and started else 0.0)],
    )
    checked = report.get("last_reconcile") or {}
    family(
        "snapzen_reconcile_last_run_timestamp_seconds",
        "Unix time the last `ledger reconcile` check finished; 0 before the first.",
        [({}, _epoch(checked.get("finished_at")) or 0.0)],
    )
    family(
        "snapzen_reconcile_findings",
        "Findings of the last `ledger reconcile` check, by kind (0 before the first).",
        (({"kind": k.value}, (checked.get("findings") or {}).get(k.value, 0)) for k in Kind),
    )
    family(
        "snapzen_reconcile_due",
        "1 when no `ledger reconcile` check finished in the last 8 days (a ledger younger "
        "than that is not due), else 0.",
        [({}, 1 if report.get("reconcile_due") else 0)],
    )
    return "\n".join(lines) + "\n"


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
    last = conn.execute(
        """SELECT run_id, kind, outcome, error, finished_at FROM runs
           WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, rowid DESC LIMIT 1"""
    ).fetchone()
    if last is not None and last[2] == "aborted":
        return Health(False, f"last run {last[0]} ({last[1]}) aborted: {last[3] or 'no reason'}")
    if last is not None and last[2] == "interrupted":
        return Health(
            False,
            f"last run {last[0]} ({last[1]}) was interrupted before it finished (exit code 1): "
            "the next run, or the same command again, does the rest",
        )
    window = 3 * parse_interval(settings.schedule.every)
    completed = conn.execute(
        f"""SELECT MAX(finished_at) FROM runs
            WHERE outcome IN ({", ".join("?" for _ in COMPLETED)})""",
        COMPLETED,
    ).fetchone()[0]
    if completed is None:
        return Health(False, "no run has completed yet")
    age = now - clock.parse(completed)
    if age > window:
        return Health(
            False,
            f"no run completed in {_span(age)} (more than 3 x schedule.every "
            f"{settings.schedule.every})",
        )
    deadline = now - timedelta(days=settings.pipeline.deadline_days)
    at_risk, oldest = conn.execute(
        f"""SELECT COUNT(*), MIN(case_id) FROM cases
           WHERE status IN {sql_list(UNSENT_OR_PUSHING)} AND started_at IS NOT NULL
             AND started_at <= ?""",
        (clock.format(deadline),),
    ).fetchone()
    if at_risk:
        return Health(
            False,
            f"{at_risk} case(s) unsynced for more than {settings.pipeline.deadline_days} days "
            f"are at risk of SnapEngage's deletion (e.g. {oldest})",
        )
    return Health(True, f"healthy: last run completed {_span(age)} ago")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"
