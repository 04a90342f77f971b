"""Human-readable output with rich (tables on a terminal, plain text otherwise).

Data never reaches rich as markup: case ids, widget ids, errors and paths come from the APIs,
the configuration or the ledger, and ``[/]`` in one crashed ``status`` while ``[link=…]``
rendered as a hyperlink. Table cells are ``Text`` (never parsed), interpolated values go
through ``escape``, and consoles are built with emoji codes off (``:x:`` in data stays text).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from snapzen.commands.ledger_terms import CaseStatus


def console(*, stderr: bool = False) -> Console:
    """A console for data-bearing output: emoji codes are not replaced."""
    return Console(stderr=stderr, emoji=False)


def cell(value: Any) -> Text:
    """A table cell that shows ``value`` literally (markup is not parsed in a Text)."""
    return Text("" if value is None else str(value))


def safe(value: Any) -> str:
    """``value`` for interpolation into a markup string: brackets escaped."""
    return escape(str(value))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def print_status(report: dict[str, Any]) -> None:
    out = console()
    table = Table(
        title=Text(f"snapzen status — {report['database']}"),
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
            cell(widget),
            cell(info["cursor"] or "-"),
            *(str(counts[s]) for s in CaseStatus),
            _age(info["oldest_unsynced_age_seconds"]),
        )
    out.print(table)
    if report["withheld_by_reason"]:
        out.print(
            "withheld by reason: "
            + ", ".join(
                f"{safe(reason)}={n}"
                for reason, n in sorted(report["withheld_by_reason"].items(), key=str)
            )
        )
    out.print(
        f"ledger rows: {report['ledger_rows']} (decisions {report['decisions']}, transfers "
        f"{report['transfers']}); raw payloads held: "
        f"{report['raw_payloads_held']} (oldest {_age(report['raw_oldest_age_seconds'])})"
    )
    for recipient, count in report.get("derogation_transfers", {}).items():
        last = report.get("derogation_transfers_last_run", {}).get(recipient, 0)
        out.print(
            f"[bold yellow]{count} transfer(s) to {safe(recipient)} under an Art. 49 "
            f"derogation ({last} in the last run): the exception, not a basis for regular "
            "transfers[/]"
        )
    if report["at_risk_count"]:
        out.print(
            f"[bold red]{report['at_risk_count']} case(s) at risk of SnapEngage's "
            f"deletion (unsynced for more than {report['deadline_days']} days)[/]"
        )
    if report.get("imports_in_progress"):
        out.print(
            f"{report['imports_in_progress']} case(s) imported with no answer yet: in progress, "
            "resolved by lookup once Zendesk shows no import job queued"
        )
    if report.get("imports_unresolved"):
        out.print(
            f"[bold red]{report['imports_unresolved']} case(s) still unresolved after "
            "zendesk.recovery_grace_seconds[/]"
        )
    for failure in report["failed"][:10]:
        out.print(
            f"failed {safe(failure['case_id'])} (attempts {failure['attempts']}): "
            f"{safe(failure['error'])}"
        )
    for flag in report.get("flagged", [])[:10]:
        tickets = ", ".join(str(t) for t in flag["ticket_ids"])
        out.print(
            f"[bold red]flagged[/] {safe(flag['case_id'])}: {safe(flag['kind'])} "
            f"(tickets {tickets}; found by {safe(flag['source'])}); nothing was deleted"
        )
    if len(report.get("flagged", [])) > 10:
        out.print(f"... {len(report['flagged']) - 10} more flagged case(s): status --json")
    for chat in report.get("future_dated", [])[:10]:
        out.print(
            f"[bold red]dated in the future: {safe(chat['case_id'])} "
            f"({safe(chat['widget_id'])}) started {safe(chat['started_at'])}, {chat['status']}[/]"
        )
    if report.get("requests_overdue"):
        named = ", ".join(report["requests_overdue"][:10])
        out.print(
            f"[bold red]{len(report['requests_overdue'])} data-subject request(s) past their "
            f"deadline: {safe(named)}[/] (`snapzen ledger requests`)"
        )
    if report.get("clock_warning"):
        out.print(f"[bold red]clock: {safe(report['clock_warning'])}[/]")
    if report.get("legacy_references"):
        out.print(f"legacy references: {safe(report['legacy_references']['note'])}")
    _print_reconcile(out, report)
    run = report["last_run"]
    if run:
        exit_note = "" if run.get("exit_code") is None else f" (exit code {run['exit_code']})"
        out.print(
            f"last run {safe(run['run_id'])} ({safe(run['kind'])}, {safe(run['actor'])}): "
            f"{safe(run['outcome'])}{exit_note} "
            f"at {safe(run['finished_at'] or run['started_at'])}; "
            f"fetched {run['fetched']}, created {run['created']}, withheld {run['withheld']}, "
            f"failed {run['failed']}"
        )
    else:
        out.print("no run yet")


def _print_reconcile(out: Console, report: dict[str, Any]) -> None:
    """The last `ledger reconcile` check, and a reminder when it is due (weekly)."""
    last = report.get("last_reconcile")
    if last:
        found = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in last["findings"].items() if n)
        verdict = f"findings: {found}" if found else "ledger and Zendesk agree"
        if not last.get("complete", True):
            verdict += " (incomplete read)"
        out.print(
            f"last reconcile {safe(last['run_id'])} at {safe(last['finished_at'])}: {verdict}"
        )
    if report.get("reconcile_due"):
        when = "has not run for more than 8 days" if last else "has never run"
        out.print(f"[bold yellow]reconcile {when}: run `snapzen ledger reconcile` (weekly)[/]")
