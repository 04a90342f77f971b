"""Human-readable output with rich (tables on a terminal, plain text otherwise)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def print_status(report: dict[str, Any]) -> None:
    console = Console()
    table = Table(
        title=f"snapzen status — {report['database']}",
        caption="pend pending · push pushing · sync synced · held withheld · fail failed · "
        "ign ignored · oldest: age of the oldest unsynced chat",
    )
    # Widget ids are UUIDs: let them fold so the counts stay readable on an 80-column terminal.
    table.add_column("widget", overflow="fold", min_width=10)
    table.add_column("cursor", no_wrap=True)
    # Short headers (pending, pushing, synced, withheld, failed, ignored; oldest unsynced).
    for column in ("pend", "push", "sync", "held", "fail", "ign"):
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("oldest", no_wrap=True)
    for widget, info in report["widgets"].items():
        counts = info["counts"]
        table.add_row(
            widget,
            info["cursor"] or "-",
            *(
                str(counts[s])
                for s in ("pending", "pushing", "synced", "withheld", "failed", "ignored")
            ),
            _age(info["oldest_unsynced_age_seconds"]),
        )
    console.print(table)
    if report["withheld_by_reason"]:
        console.print(
            "withheld by reason: "
            + ", ".join(
                f"{reason}={n}" for reason, n in sorted(report["withheld_by_reason"].items())
            )
        )
    console.print(
        f"ledger rows: {report['ledger_rows']}; raw payloads held: "
        f"{report['raw_payloads_held']} (oldest {_age(report['raw_oldest_age_seconds'])})"
    )
    if report["at_risk_count"]:
        console.print(
            f"[bold red]{report['at_risk_count']} case(s) at risk of SnapEngage's "
            f"deletion (unsynced for more than {report['deadline_days']} days)[/]"
        )
    if report.get("imports_in_progress"):
        console.print(
            f"{report['imports_in_progress']} case(s) imported with no answer yet: in progress, "
            "resolved by lookup once Zendesk shows no import job queued"
        )
    if report.get("imports_unresolved"):
        console.print(
            f"[bold red]{report['imports_unresolved']} case(s) still unresolved after "
            "zendesk.recovery_grace_seconds[/]"
        )
    for failure in report["failed"][:10]:
        console.print(
            f"failed {failure['case_id']} (attempts {failure['attempts']}): {failure['error']}"
        )
    for flag in report.get("flagged", [])[:10]:
        tickets = ", ".join(str(t) for t in flag["ticket_ids"])
        console.print(
            f"[bold red]flagged[/] {escape(flag['case_id'])}: {flag['kind']} "
            f"(tickets {tickets}; found by {flag['source']}); nothing was deleted"
        )
    if len(report.get("flagged", [])) > 10:
        console.print(f"... {len(report['flagged']) - 10} more flagged case(s): status --json")
    run = report["last_run"]
    if run:
        console.print(
            f"last run {run['run_id']} ({run['kind']}, {run['actor']}): {run['outcome']} "
            f"at {run['finished_at'] or run['started_at']}; fetched {run['fetched']}, "
            f"created {run['created']}, withheld {run['withheld']}, failed {run['failed']}"
        )
    else:
        console.print("no run yet")
