"""`status` for people: a rich table per widget, then one line per thing to know.

Data never reaches rich as markup: case ids, widget ids, errors and paths come from the APIs,
the configuration or the ledger, and ``[/]`` in one crashed ``status`` while ``[link=…]``
rendered as a hyperlink. Every cell and line is a ``Text`` (never parsed for markup), its
style given apart, and consoles are built with emoji codes off (``:x:`` in data stays text).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from snapzen.commands.ledger_terms import CaseStatus

RED, YELLOW = "bold red", "bold yellow"  # the styles of what needs a person, and warnings


def console(*, stderr: bool = False) -> Console:
    """A console for data-bearing output: emoji codes are not replaced."""
    return Console(stderr=stderr, emoji=False)


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
            Text(widget),
            Text(info["cursor"] or "-"),
            *(str(counts[s]) for s in CaseStatus),
            _age(info["oldest_unsynced_age_seconds"]),
        )
    out.print(table)
    for line in _notes(report):
        out.print(line)


def _notes(report: dict[str, Any]) -> Iterator[Text]:
    """Each thing to know below the table, a line of its own."""
    if report["withheld_by_reason"]:
        reasons = sorted(report["withheld_by_reason"].items(), key=str)
        yield Text("withheld by reason: " + ", ".join(f"{r}={n}" for r, n in reasons))
    yield Text(
        f"ledger rows: {report['ledger_rows']} (decisions {report['decisions']}, transfers "
        f"{report['transfers']}); raw payloads held: "
        f"{report['raw_payloads_held']} (oldest {_age(report['raw_oldest_age_seconds'])})"
    )
    for recipient, count in report.get("derogation_transfers", {}).items():
        last = report.get("derogation_transfers_last_run", {}).get(recipient, 0)
        yield Text(
            f"{count} transfer(s) to {recipient} under an Art. 49 derogation ({last} in the "
            "last run): the exception, not a basis for regular transfers",
            YELLOW,
        )
    if report["at_risk_count"]:
        yield Text(
            f"{report['at_risk_count']} case(s) at risk of SnapEngage's deletion (unsynced for "
            f"more than {report['deadline_days']} days)",
            RED,
        )
    if report.get("imports_in_progress"):
        yield Text(
            f"{report['imports_in_progress']} case(s) imported with no answer yet: in "
            "progress, resolved by lookup once Zendesk shows no import job queued"
        )
    if report.get("imports_unresolved"):
        yield Text(
            f"{report['imports_unresolved']} case(s) still unresolved after "
            "zendesk.recovery_grace_seconds",
            RED,
        )
    for failure in report["failed"][:10]:
        yield Text(
            f"failed {failure['case_id']} (attempts {failure['attempts']}): {failure['error']}"
        )
    flagged = report.get("flagged", [])
    for flag in flagged[:10]:
        tickets = ", ".join(str(t) for t in flag["ticket_ids"])
        yield Text(
            f"flagged {flag['case_id']}: {flag['kind']} (tickets {tickets}; found by "
            f"{flag['source']}); nothing was deleted",
            RED,
        )
    if len(flagged) > 10:
        yield Text(f"... {len(flagged) - 10} more flagged case(s): status --json")
    for chat in report.get("future_dated", [])[:10]:
        yield Text(
            f"dated in the future: {chat['case_id']} ({chat['widget_id']}) started "
            f"{chat['started_at']}, {chat['status']}",
            RED,
        )
    if overdue := report.get("requests_overdue"):
        yield Text(
            f"{len(overdue)} data-subject request(s) past their deadline: "
            f"{', '.join(overdue[:10])} (`snapzen ledger requests`)",
            RED,
        )
    if report.get("clock_warning"):
        yield Text(f"clock: {report['clock_warning']}", RED)
    yield from _reconcile(report)
    run = report["last_run"]
    if not run:
        yield Text("no run yet")
        return
    exit_note = "" if run.get("exit_code") is None else f" (exit code {run['exit_code']})"
    yield Text(
        f"last run {run['run_id']} ({run['kind']}, {run['actor']}): {run['outcome']}"
        f"{exit_note} at {run['finished_at'] or run['started_at']}; fetched {run['fetched']}, "
        f"created {run['created']}, withheld {run['withheld']}, failed {run['failed']}"
    )


def _reconcile(report: dict[str, Any]) -> Iterator[Text]:
    """The last `ledger reconcile` check, and a reminder when it is due (weekly)."""
    last = report.get("last_reconcile")
    if last:
        found = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in last["findings"].items() if n)
        verdict = f"findings: {found}" if found else "ledger and Zendesk agree"
        if not last.get("complete", True):
            verdict += " (incomplete read)"
        yield Text(f"last reconcile {last['run_id']} at {last['finished_at']}: {verdict}")
    if report.get("reconcile_due"):
        when = "has not run for more than 8 days" if last else "has never run"
        yield Text(f"reconcile {when}: run `snapzen ledger reconcile` (weekly)", YELLOW)
