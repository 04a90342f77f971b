"""`snapzen backfill` against the in-process sandbox: range checks, exactly-once with sync,
resume after a crash or Ctrl-C, dry run, actor, progress lines."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import service
from snapzen.commands.backfill import plan_backfill, run_backfill
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import CrashHook
from tests.fakes import SandboxApis, make_case
from tests.sync_parts import FakeClock

TODAY = datetime.now(UTC).date()


def noon(days_ago: int) -> datetime:
    day = TODAY - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def load_days(apis: SandboxApis, days_ago: range, per_day: int = 3) -> set[str]:
    """Cases on each day; one withheld (consent refused) per day on w2. Returns eligible ids."""
    eligible = set()
    for n in days_ago:
        ids = [f"d{n}-{i}" for i in range(per_day)]
        apis.add_cases("w1", [make_case(c, started=noon(n)) for c in ids])
        apis.add_cases(
            "w2", [make_case(f"d{n}-refused", started=noon(n), widget="w2", consent="no")]
        )
        eligible.update(ids)
    return eligible


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (TODAY - timedelta(days=61), TODAY, "older than SnapEngage keeps chats"),
        (TODAY, TODAY + timedelta(days=1), "in the future"),
        (TODAY - timedelta(days=2), TODAY - timedelta(days=3), "is after"),
    ],
)
def test_refuses_bad_ranges_with_one_line_and_exit_2(
    sync_env: Path, apis: SandboxApis, since: date, until: date, message: str
) -> None:
    code, _, err = cli("backfill", "--since", since.isoformat(), "--until", until.isoformat())
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert apis.requests == {}  # refused before any network call
    assert _runs(sync_env) == 0  # the ledger was not written to


def test_backfill_creates_each_case_once_records_windows_and_actor(
    settings: Settings, apis: SandboxApis
) -> None:
    eligible = load_days(apis, range(3, 6))
    since, until = (TODAY - timedelta(days=5)).isoformat(), (TODAY - timedelta(days=3)).isoformat()
    code, out, _ = cli("backfill", "--since", since, "--until", until, "--actor", "alice")
    assert code == 0, out
    assert "6 window(s), 0 already finished, 6 done" in out
    assert set(apis.tickets_by_external_id()) == {f"snapengage:{c}" for c in eligible}
    assert set(apis.tickets_by_external_id().values()) == {1}

    db = open_db(settings.ledger.path)
    runs = db.execute("SELECT kind, actor, outcome, details FROM runs").fetchall()
    # One pass (and lock turn) per slice: these three small days fit in one (--slice 60).
    assert [r[:3] for r in runs] == [("backfill", "alice", "ok")]
    days = [(TODAY - timedelta(days=n)).isoformat() for n in (5, 4, 3)]
    assert json.loads(runs[0][3])["backfill"]["days"] == days
    windows = db.execute("SELECT widget_id, day FROM backfill_windows").fetchall()
    assert len(windows) == 6
    withheld = dict(db.execute("SELECT case_id, reason FROM cases WHERE status='withheld'"))
    assert withheld == {f"d{n}-refused": "consent_refused" for n in range(3, 6)}

    # Rerun: every window is finished, nothing is fetched or sent again.
    logs_before = apis.requests["logs"]
    code, out, _ = cli("backfill", "--since", since, "--until", until)
    assert code == 0 and "6 already finished, 0 done" in out
    assert apis.requests["logs"] == logs_before


def test_backfill_and_sync_over_the_same_days_never_double_create(
    settings: Settings, apis: SandboxApis
) -> None:
    eligible = load_days(apis, range(1, 4))
    plan = plan_backfill(settings, TODAY - timedelta(days=3), TODAY)
    # A sync first stages and pushes some of it, then the backfill covers the same days,
    # then another sync: each case is created exactly once.
    service.sync(settings)
    run_backfill(settings, plan, actor="bob")
    service.sync(settings)
    counts = apis.tickets_by_external_id()
    assert set(counts) == {f"snapengage:{c}" for c in eligible}
    assert set(counts.values()) == {1}


def test_a_backfill_takes_zendesks_whole_job_cap_and_a_sync_leaves_headroom(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch, engine_fake_time: FakeClock
) -> None:
    # One ticket per job and jobs that finish only after many polls: the slots fill up.
    monkeypatch.setenv("SNAPZEN_ZENDESK__BATCH_SIZE", "1")
    apis.polls_until_done = 40
    load_days(apis, range(3, 4), per_day=40)
    day = (TODAY - timedelta(days=3)).isoformat()
    code, out, _ = cli("backfill", "--since", day, "--until", day)
    assert code == 0, out
    assert apis.peak_unfinished == 30  # zendesk.backfill_max_jobs_in_flight
    apis.peak_unfinished = 0
    load_days(apis, range(1, 2), per_day=40)
    code, out, _ = cli("sync")
    assert code == 0, out
    assert apis.peak_unfinished == 25  # zendesk.max_jobs_in_flight


class SimulatedCrash(BaseException):
    pass


def test_slice_zero_is_one_pass_per_day(sync_env: Path, apis: SandboxApis) -> None:
    load_days(apis, range(3, 6))
    since, until = (TODAY - timedelta(days=5)).isoformat(), (TODAY - timedelta(days=3)).isoformat()
    code, out, _ = cli("backfill", "--since", since, "--until", until, "--slice", "0")
    assert code == 0 and "6 done" in out
    db = open_db(sync_env)
    details = [json.loads(r[0]) for r in db.execute("SELECT details FROM runs ORDER BY rowid")]
    assert [d["backfill"]["days"] for d in details] == [
        [(TODAY - timedelta(days=n)).isoformat()] for n in (5, 4, 3)
    ]


def test_resumes_after_a_crash_skipping_finished_days(
    settings: Settings, apis: SandboxApis
) -> None:
    """One pass per day (slice 0): the crash in the third day's pass leaves two days done."""
    eligible = load_days(apis, range(2, 6))
    plan = plan_backfill(settings, TODAY - timedelta(days=5), TODAY - timedelta(days=2))
    posts = []

    def crash_on_third_post(point: str) -> None:
        if point == "after_post":
            posts.append(1)
            if len(posts) == 3:
                raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        run_backfill(settings, plan, crash_hook=crash_on_third_post, slice_seconds=0)
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(DISTINCT day) FROM backfill_windows").fetchone()[0] == 2
    apis.complete_all_jobs()  # Zendesk finished the job we never heard back about

    result = run_backfill(settings, plan)
    assert result.windows_skipped == 4 and result.windows_done == 4
    assert set(apis.tickets_by_external_id()) == {f"snapengage:{c}" for c in eligible}
    assert set(apis.tickets_by_external_id().values()) == {1}


def crash_at_second(point: str) -> CrashHook:
    """A crash hook that raises the second time the pass reaches ``point``."""
    seen: list[str] = []

    def hook(reached: str) -> None:
        seen.append(reached)
        if reached == point and seen.count(point) == 2:
            raise SimulatedCrash(point)

    return hook


def assert_each_chat_once(apis: SandboxApis, db: Any, eligible: set[str]) -> None:
    """One ticket and one transfer row per eligible chat, none left 'pushing'."""
    counts = apis.tickets_by_external_id()
    assert set(counts) == {f"snapengage:{c}" for c in eligible}, "a chat was lost"
    assert set(counts.values()) == {1}, "a ticket was created twice"
    transfers = db.execute(
        "SELECT COUNT(DISTINCT case_id), COUNT(*) FROM events WHERE event = 'transfer'"
    ).fetchone()
    assert transfers == (len(eligible), len(eligible))
    assert db.execute("SELECT COUNT(*) FROM cases WHERE status = 'pushing'").fetchone()[0] == 0


@pytest.mark.parametrize("point", ["before_post", "after_post", "after_job"])
def test_a_crash_mid_slice_records_no_day_and_the_rerun_redoes_the_slice_once(
    settings: Settings, apis: SandboxApis, point: str
) -> None:
    """Several days in one slice, batches (and jobs) spanning days: a crash at any point of
    the second POST's life leaves no day recorded; the rerun redoes them all, exactly once."""
    eligible = set()
    for n in range(2, 6):  # 120 eligible cases a day: batches of 100 straddle the days
        ids = [f"d{n}-{i}" for i in range(120)]
        apis.add_cases("w1", [make_case(c, started=noon(n)) for c in ids])
        eligible.update(ids)
    plan = plan_backfill(settings, TODAY - timedelta(days=5), TODAY - timedelta(days=2))
    with pytest.raises(SimulatedCrash):
        run_backfill(settings, plan, crash_hook=crash_at_second(point))
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM backfill_windows").fetchone()[0] == 0
    apis.complete_all_jobs()

    result = run_backfill(settings, plan)
    assert result.windows_skipped == 0 and result.windows_done == 8
    assert not result.interrupted and result.exit_code == 0
    assert_each_chat_once(apis, db, eligible)


def _handed_over(db: Any) -> list[int]:
    rows = db.execute("SELECT details FROM runs ORDER BY rowid")
    return [json.loads(r[0])["backfill"]["jobs_handed_over"] for r in rows]


def test_a_slice_hands_its_running_jobs_to_the_next_which_records_them_once(
    settings: Settings, apis: SandboxApis
) -> None:
    """A slice with days after it does not wait for its last jobs: the next slice's recovery
    reads them all in one job_statuses and polls them with its own; only the last slice
    drains. Every case once, nothing left 'pushing', every day recorded."""
    apis.polls_until_done = 3  # each job runs through two polls
    eligible = load_days(apis, range(2, 5))
    plan = plan_backfill(settings, TODAY - timedelta(days=4), TODAY - timedelta(days=2))
    result = run_backfill(settings, plan, slice_seconds=0)  # one slice a day
    assert result.windows_done == 6 and result.exit_code == 0
    db = open_db(settings.ledger.path)
    handed = _handed_over(db)  # day 1's job; then day 2's (and day 1's if still running)
    assert handed[0] == 1 and 1 <= handed[1] <= 2 and handed[2] == 0  # the last one drains
    assert_each_chat_once(apis, db, eligible)
    assert result.counts.created == len(eligible)


@pytest.mark.parametrize("point", ["before_post", "after_post", "after_job_id"])
def test_a_crash_in_the_slice_that_took_over_jobs_loses_and_duplicates_nothing(
    settings: Settings, apis: SandboxApis, point: str
) -> None:
    """The first day's slice hands its running job over and records its day; the second
    slice crashes at its POST: its day is not recorded, the handed-over job stays 'pushing'
    with its job id, and the rerun skips the first day, redoes the second, exactly once."""
    apis.polls_until_done = 100  # the handed-over job outlasts the second slice
    eligible = load_days(apis, range(2, 4))
    plan = plan_backfill(settings, TODAY - timedelta(days=3), TODAY - timedelta(days=2))
    with pytest.raises(SimulatedCrash):
        run_backfill(settings, plan, crash_hook=crash_at_second(point), slice_seconds=0)
    db = open_db(settings.ledger.path)
    days = {r[0] for r in db.execute("SELECT day FROM backfill_windows")}
    assert days == {(TODAY - timedelta(days=3)).isoformat()}
    handed = "SELECT COUNT(*) FROM cases WHERE status = 'pushing' AND job_id IS NOT NULL"
    assert db.execute(handed).fetchone()[0] >= 3  # the first day's job, still running
    apis.complete_all_jobs()

    result = run_backfill(settings, plan)
    assert result.windows_skipped == 2 and result.windows_done == 2
    assert_each_chat_once(apis, db, eligible)


def test_stop_request_finishes_the_day_in_hand_then_a_rerun_resumes(
    settings: Settings, apis: SandboxApis
) -> None:
    eligible = load_days(apis, range(2, 6))
    plan = plan_backfill(settings, TODAY - timedelta(days=5), TODAY - timedelta(days=2))
    stop = threading.Event()

    class StopAfterFirstDay:
        def start(self, total: int, skipped: int) -> None: ...
        def tick(self, what: str, n: int) -> None: ...
        def day_started(self, day: date) -> None: ...
        def finish(self) -> None: ...

        def window_done(self, day: date, widgets: object, counts: object) -> None:
            stop.set()  # Ctrl-C during the first day

    # One pass per day (slice 0), so the stop lands between days.
    first = run_backfill(settings, plan, stop=stop, progress=StopAfterFirstDay(), slice_seconds=0)
    assert first.interrupted and first.exit_code == 1
    assert first.windows_done == 2  # the day in hand (both widgets) finished and was recorded

    second = run_backfill(settings, plan)
    assert second.windows_skipped == 2 and second.windows_done == 6
    assert set(apis.tickets_by_external_id()) == {f"snapengage:{c}" for c in eligible}
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_stop_mid_slice_records_none_of_its_days_and_a_rerun_redoes_them(
    settings: Settings, apis: SandboxApis
) -> None:
    eligible = load_days(apis, range(2, 6))
    plan = plan_backfill(settings, TODAY - timedelta(days=5), TODAY - timedelta(days=2))
    stop = threading.Event()

    def stop_on_second_page(what: str, n: int) -> None:
        if what == "fetched":  # a page stored (other ticks, e.g. a window's end, between)
            stop_on_second_page.pages += 1  # type: ignore[attr-defined]
            if stop_on_second_page.pages == 2:  # type: ignore[attr-defined]
                stop.set()

    stop_on_second_page.pages = 0  # type: ignore[attr-defined]

    class Ticks:
        def start(self, total: int, skipped: int) -> None: ...
        def finish(self) -> None: ...
        def day_started(self, day: date) -> None: ...
        def window_done(self, day: date, widgets: object, counts: object) -> None: ...

        def tick(self, what: str, n: int) -> None:
            stop_on_second_page(what, n)

    first = run_backfill(settings, plan, stop=stop, progress=Ticks())
    assert first.interrupted and first.exit_code == 1 and first.windows_done == 0
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM backfill_windows").fetchone()[0] == 0
    details = json.loads(db.execute("SELECT details FROM runs").fetchone()[0])
    assert details["interrupted"] is True

    second = run_backfill(settings, plan)
    assert second.windows_skipped == 0 and second.windows_done == 8
    assert set(apis.tickets_by_external_id()) == {f"snapengage:{c}" for c in eligible}
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_dry_run_writes_nothing_and_lists_what_would_happen(
    settings: Settings, apis: SandboxApis
) -> None:
    load_days(apis, range(3, 5), per_day=2)
    service.sync(settings)  # the real ledger already has these days synced...
    apis.add_cases("w1", [make_case("new-one", started=noon(4))])  # ...except a late arrival
    apis.add_cases("w2", [make_case("new-no", started=noon(4), widget="w2", consent=None)])
    late = [make_case(f"late-{i:02}", started=noon(3)) for i in range(12)]
    apis.add_cases("w1", late)
    ledger_before = settings.ledger.path.read_bytes()
    posts_before = apis.requests["create_many"]

    since, until = (TODAY - timedelta(days=4)).isoformat(), (TODAY - timedelta(days=3)).isoformat()
    code, out, _ = cli("backfill", "--since", since, "--until", until, "--dry-run")
    assert code == 0, out
    # The conditional (nothing was created), and a summary of the ids, not a dump of them.
    summary = out.splitlines()[0]
    assert "would create 13 ticket(s), would withhold 1, would ignore 0" in summary
    assert "created" not in summary.replace("would create", "")
    assert "  would create: late-00" in out or "  would create: new-one" in out
    assert "(+8 more)" in out and sum(out.count(f"late-{i:02}") for i in range(12)) <= 5
    assert "would withhold (no_consent_recorded, 1): new-no" in out
    assert "nothing was written" in out
    code, out, _ = cli("backfill", "--since", since, "--until", until, "--dry-run", "--json")
    body = json.loads(out)["dry_run"]
    assert len(body["would_create"]) == 13 and list(body["would_withhold"]) == ["new-no"]
    assert apis.requests["create_many"] == posts_before
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM cases WHERE case_id LIKE 'new-%'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM runs WHERE kind='backfill'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM backfill_windows").fetchone()[0] == 0
    assert ledger_before  # the file existed; its rows are unchanged as checked above


def test_progress_is_json_lines_when_not_on_a_terminal(sync_env: Path, apis: SandboxApis) -> None:
    load_days(apis, range(2, 4), per_day=1)
    since, until = (TODAY - timedelta(days=3)).isoformat(), (TODAY - timedelta(days=2)).isoformat()
    code, _, err = cli("backfill", "--since", since, "--until", until, "--progress-every", "0")
    assert code == 0
    lines = [json.loads(x) for x in err.splitlines() if '"backfill_progress"' in x]
    assert lines[0]["windows_done"] == 0 and lines[0]["windows_total"] == 4
    assert lines[-1]["windows_done"] == 4 and lines[-1]["created"] == 2


def _runs(ledger: Path) -> int:
    with sqlite3.connect(ledger) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
