"""Wrong clocks: cursors advance on evidence, windows never invert, deletion refuses a clock
far past the ledger, and a clock behind the last run warns loudly but still fetches."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.ledger.store.cursor_rules import (
    check_clock,
    deletion_clock_error,
    fetch_window,
    next_cursor,
    utc_day,
)
from snapzen.support.clock import OFFSET_VARIABLE
from tests.fakes import SandboxApis, make_case, recent

TODAY = date(2026, 3, 10)
runner = CliRunner()


def test_cursor_never_passes_the_newest_chat_read_nor_today() -> None:
    ahead = TODAY + timedelta(days=10)  # the pass's clock ran 10 days ahead
    moved = next_cursor(
        current=TODAY - timedelta(days=1),
        fetched_until=ahead,
        holding=None,
        newest_read=TODAY,
        today=ahead,
    )
    assert moved == TODAY
    future = next_cursor(
        current=TODAY + timedelta(days=30), fetched_until=TODAY, holding=None,
        newest_read=TODAY - timedelta(days=2), today=TODAY,
    )  # fmt: skip
    assert future == TODAY - timedelta(days=2)  # a cursor left in the future comes back


def test_cursor_still_stops_at_the_first_unfinished_day() -> None:
    held = TODAY - timedelta(days=4)
    assert (
        next_cursor(current=None, fetched_until=TODAY, holding=held, newest_read=TODAY, today=TODAY)
        == held
    )


def test_no_chat_read_moves_no_cursor() -> None:
    assert (
        next_cursor(current=None, fetched_until=TODAY, holding=None, newest_read=None, today=TODAY)
        is None
    )
    assert next_cursor(
        current=TODAY + timedelta(days=9), fetched_until=TODAY, holding=None, newest_read=None,
        today=TODAY,
    ) == TODAY  # fmt: skip


@pytest.mark.parametrize(
    ("cursor", "today", "expected"),
    [
        (None, TODAY, (TODAY - timedelta(days=60), TODAY)),
        (TODAY, TODAY, (TODAY - timedelta(days=2), TODAY)),
        # The clock reads 20 days before the cursor: still cursor - overlap .. cursor.
        (TODAY, TODAY - timedelta(days=20), (TODAY - timedelta(days=2), TODAY)),
        # A cursor older than what SnapEngage holds: starts at the oldest held day.
        (TODAY - timedelta(days=90), TODAY, (TODAY - timedelta(days=60), TODAY)),
    ],
)
def test_window_never_starts_after_its_end(
    cursor: date | None, today: date, expected: tuple[date, date]
) -> None:
    start, end = fetch_window(cursor=cursor, today=today, overlap_days=2, retention_days=60)
    assert (start, end) == expected and start <= end


def test_clock_behind_the_last_run_is_detected_beyond_a_tolerance() -> None:
    last = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert check_clock(last - timedelta(minutes=1), last) is None
    assert check_clock(last - timedelta(days=10), last) == timedelta(days=10)
    assert check_clock(last, None) is None


def test_deletion_refused_when_the_clock_is_far_past_the_ledger() -> None:
    seen = datetime(2026, 3, 10, tzinfo=UTC)
    margin = timedelta(days=30)
    assert deletion_clock_error(seen + timedelta(days=29), seen, margin) is None
    why = deletion_clock_error(seen + timedelta(days=3 * 365), seen, margin)
    assert why and "refusing to delete" in why
    assert deletion_clock_error(seen, None, margin) is None  # nothing recorded: nothing to do


def test_utc_day_of_an_aware_moment() -> None:
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC).astimezone()
    assert utc_day(late) == date(2026, 3, 10)


# ---------------------------------------------------------------- the process clock moved


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _runs(ledger: Path) -> int:
    with sqlite3.connect(ledger) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def test_a_sync_ten_days_ahead_of_zendesk_refuses_and_records_nothing(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zendesk's Date says the clock is wrong: exit 1, one line, before anything is fetched
    or sent, and no run row (its start would be a time in the future). The next pass under
    the right clock sends every chat and has nothing to complain about."""
    apis.add_cases("w1", [make_case("before", started=recent(3600))])
    apis.add_cases("w1", [make_case("ending", started=recent(10))])  # 10 min: not settled
    monkeypatch.setenv(OFFSET_VARIABLE, str(10 * 86400))
    ahead = runner.invoke(app, ["sync"])
    assert ahead.exit_code == 1, ahead.output
    [line] = [x for x in ahead.stderr.splitlines() if x.startswith("snapzen: error")]
    assert "ClockAheadError" in line and "10 days ahead of Zendesk's" in line
    assert apis.tickets == [] and apis.requests.get("logs", 0) == 0
    assert _runs(sync_env) == 0

    monkeypatch.delenv(OFFSET_VARIABLE)
    apis.add_cases("w1", [make_case(f"after{i}", started=recent(60 + i)) for i in range(3)])
    normal = runner.invoke(app, ["sync"])
    assert normal.exit_code == 0, normal.output
    sent = {t["external_id"].split(":")[-1] for t in apis.tickets}
    assert sent == {"before", "after0", "after1", "after2"}  # "ending" is still settling
    assert not [e for e in _events(normal.stderr) if e["event"] == "clock_behind_last_run"]


def test_without_a_date_header_a_sync_ahead_still_keeps_cursors_on_evidence(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Date to compare with (a proxy dropped it): the pass warns and goes on, and the
    cursor rules still keep the cursor on real data, so the next normal run misses nothing."""
    apis.send_date = False
    apis.add_cases("w1", [make_case("before", started=recent(3600))])
    monkeypatch.setenv(OFFSET_VARIABLE, str(10 * 86400))
    ahead = runner.invoke(app, ["sync"])
    assert ahead.exit_code == 0, ahead.output
    assert [e for e in _events(ahead.stderr) if e["event"] == "clock_unchecked"]
    shown = runner.invoke(app, ["status", "--json"])
    assert shown.stdout.startswith("{"), (shown.exit_code, shown.output, shown.exception)
    report = json.loads(shown.stdout)
    real_today = datetime.now(UTC).date()
    assert report["widgets"]["w1"]["cursor"] <= real_today.isoformat()

    # Back to the real clock; chats arrive that are newer than anything read so far.
    monkeypatch.delenv(OFFSET_VARIABLE)
    apis.add_cases("w1", [make_case(f"after{i}", started=recent(60 + i)) for i in range(3)])
    normal = runner.invoke(app, ["sync"])
    assert normal.exit_code == 0, normal.output
    assert {"after0", "after1", "after2"} <= {t["external_id"].split(":")[-1] for t in apis.tickets}
    shouted = [e for e in _events(normal.stderr) if e["event"] == "clock_behind_last_run"]
    assert shouted and shouted[0]["level"] == "error"

    status = runner.invoke(app, ["status", "--json"])
    assert "earlier than a run already recorded" in json.loads(status.stdout)["clock_warning"]


def test_sweep_with_the_clock_years_ahead_deletes_nothing(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    apis.add_cases("w1", [make_case("kept", started=recent(3600))])
    assert runner.invoke(app, ["sync"]).exit_code == 0
    monkeypatch.setenv(OFFSET_VARIABLE, str(3 * 366 * 86400))
    sweep = runner.invoke(app, ["retention", "sweep"])
    assert sweep.exit_code == 1, sweep.output
    assert "ahead of Zendesk's" in sweep.stderr and "refusing to delete" in sweep.stderr
    assert apis.tickets and not getattr(apis, "deleted", None)

    # The one sync the old message asked for: refused too, so it cannot vouch for the clock.
    assert runner.invoke(app, ["sync"]).exit_code == 1
    again = runner.invoke(app, ["retention", "sweep"])
    assert again.exit_code == 1 and "refusing to delete" in again.stderr
    assert not [name for name in apis.requests if "destroy_many" in name]


def test_a_clock_behind_zendesk_is_reported_and_the_pass_goes_on(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind cannot delete early nor make a chat look finished: a warning naming both
    clocks, and the pass runs (its run recorded)."""
    apis.add_cases("w1", [make_case("old", started=recent(3 * 24 * 60))])
    monkeypatch.setenv(OFFSET_VARIABLE, str(-86400))
    behind = runner.invoke(app, ["sync"])
    assert behind.exit_code in (0, 3), behind.output
    [warned] = [e for e in _events(behind.stderr) if e["event"] == "clock_behind_zendesk"]
    assert warned["level"] == "warning" and 86390 <= int(str(warned["behind_seconds"])) <= 86410
    assert _runs(sync_env) == 1 and [t["external_id"] for t in apis.tickets] == ["snapengage:old"]
