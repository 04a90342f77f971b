"""What a command says keeps each value on its line: only the template's own newlines start one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from snapzen.commands import summaries

BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_a_line_break_inside_a_value_does_not_start_a_new_line(brk: str) -> None:
    case = f"case{brk}forged: 0 case(s) failed"
    counts = dict.fromkeys(("fetched", "created", "withheld", "ignored", "failed"), 0)
    counts |= dict.fromkeys(("ambiguous", "recovered", "decisions", "transfers"), 0)
    result = SimpleNamespace(
        run_id="run-1",
        counts=SimpleNamespace(**counts),
        derogations={},
        at_risk=[{"case_id": case}],
        failed_total=2,
        interrupted=False,
    )
    lines = summaries.said("sync", r=result, deadline_days=50)
    # The template's two lines for this result (the warning, then the failures), no third.
    assert [to_stderr for to_stderr, _ in lines] == [False, True, True]
    warning = lines[1][1]
    assert warning.startswith("WARNING: 1 unsynced case(s)")
    assert warning.splitlines() == [warning]
    assert case.encode("unicode_escape").decode() in warning  # shown, escaped
    assert lines[2][1] == "2 case(s) failed; see `snapzen status`"


def test_a_duration_is_said_in_the_largest_unit_that_counts_at_least_two() -> None:
    said = [summaries.span(s) for s in (None, 59.6, 119, 120, 7199, 7200, 47 * 3600, -10 * 86400)]
    assert said == ["-", "60 s", "119 s", "2 min", "120 min", "2 h", "47 h", "-10 days"]


def test_status_notes_style_whole_lines_and_never_read_a_value_as_markup() -> None:
    report: dict[str, object] = dict.fromkeys(
        ("withheld_by_reason", "raw_oldest_age_seconds", "clock_warning", "legacy_references"),
        None,
    )
    report |= dict.fromkeys(("ledger_rows", "decisions", "transfers", "raw_payloads_held"), 0)
    report |= dict.fromkeys(("imports_in_progress", "imports_unresolved", "deadline_days"), 0)
    report |= {"derogation_transfers": {}, "failed": [], "flagged": [], "requests_overdue": []}
    report |= {"last_reconcile": None, "reconcile_due": False, "last_run": None}
    report |= {"at_risk_count": 2, "future_dated": []}
    report["failed"] = [{"case_id": "[bold red]x[/]", "attempts": 1, "error": "[/] boom"}]
    notes = {note.plain: note.style for note in summaries.noted("status_notes", r=report)}
    alert = "2 case(s) at risk of SnapEngage's deletion (unsynced for more than 0 days)"
    assert notes[alert] == "bold red"
    assert notes["failed [bold red]x[/] (attempts 1): [/] boom"] == ""  # as it is, unstyled
