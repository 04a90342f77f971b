"""A wrong clock never deletes (issue 23, item 6), with the real CLI against the sandbox.

The attack: with the clock 3 years ahead the sweep refused and said "run `snapzen sync`";
that sync recorded a run in the future (and sent a chat still in progress); the next sweep
believed the clock and deleted every ticket. `snapzen run` did the same on its own: a pass at
start, then the daily sweep. Now the clock is checked against the `Date` of Zendesk's answers
(the sandbox sends the real time, as Zendesk does), which no local clock can move.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.support.clock import OFFSET_VARIABLE
from tests.e2e.conftest import cli_env, let_search_index, snapzen, ticket_counts

THREE_YEARS = str(3 * 366 * 86400)


def _rows(ledger: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as conn:
        return list(conn.execute(sql).fetchall())


def _live(sb: Any) -> set[int]:
    return {int(t["id"]) for t in sb.tickets() if not t["deleted"]}


def _plant_expired_ticket(sb: Any) -> int:
    """A snapzen ticket whose retention ended long ago that the ledger does not know (what
    `retention sweep --reconcile` is for): the normal path's proof that the sweep deletes."""
    item = {
        "comment": {"body": "hi"},
        "status": "solved",
        "tags": ["snapengage", "expires_2020_03"],
        "external_id": "snapengage:planted-expired",
    }
    with sb.app.store.lock:
        planted = int(sb.app.store.create_ticket(item, False, None).data["id"])
    let_search_index(sb)  # planted long ago: search finds it
    return planted


def _error_line(stderr: str) -> str:
    [line] = [x for x in stderr.splitlines() if x.startswith("snapzen: error")]
    return line


def test_a_clock_three_years_ahead_never_deletes(
    make_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = make_sandbox(chats=30, widgets=1, seed=23)
    ledger = tmp_path / "snapzen.db"
    env = cli_env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    first = snapzen(env, "sync")
    assert first.returncode in (0, 3), first.stderr
    assert ticket_counts(sb) and max(ticket_counts(sb).values()) == 1
    planted = _plant_expired_ticket(sb)
    created = ticket_counts(sb)
    live = _live(sb)
    runs = _rows(ledger, "SELECT run_id, started_at FROM runs")

    ahead = {**env, OFFSET_VARIABLE: THREE_YEARS}

    # The sweep refuses on Zendesk's Date; the sync it used to recommend refuses too.
    sweep = snapzen(ahead, "retention", "sweep", "--reconcile", "--reconcile-months", "90")
    assert sweep.returncode == 1, sweep.stderr
    assert "ahead of Zendesk's" in _error_line(sweep.stderr)
    sync = snapzen(ahead, "sync")
    assert sync.returncode == 1, sync.stderr
    line = _error_line(sync.stderr)
    assert "ClockAheadError" in line and "refusing to sync" in line
    # Nothing fetched or sent (no chat in progress looks finished), no run from the future.
    assert ticket_counts(sb) == created
    assert _rows(ledger, "SELECT run_id, started_at FROM runs") == runs
    for _ in range(2):  # "run sync first" no longer unlocks it, however often
        again = snapzen(ahead, "retention", "sweep")
        assert again.returncode == 1 and "refusing to delete" in again.stderr
    their_today = (datetime.now(UTC) + timedelta(seconds=float(THREE_YEARS))).date()
    day = their_today.isoformat()
    backfill = snapzen(ahead, "backfill", "--since", day, "--until", day)
    assert backfill.returncode == 1, backfill.stderr
    assert "ClockAheadError" in _error_line(backfill.stderr)
    assert ticket_counts(sb) == created
    assert _live(sb) == live and planted in live
    assert _rows(ledger, "SELECT COUNT(*) FROM events WHERE event = 'expired'") == [(0,)]

    # `snapzen run` under the same clock: its pass at start, then its daily sweep.
    _run_like_the_service(ahead, monkeypatch)
    assert _live(sb) == live
    assert _rows(ledger, "SELECT COUNT(*) FROM events WHERE event = 'expired'") == [(0,)]
    assert _rows(ledger, "SELECT run_id, started_at FROM runs") == runs

    # The clock right again: the sweep deletes what is due (the planted ticket), nothing else.
    swept = snapzen(env, "retention", "sweep", "--reconcile", "--reconcile-months", "90", "--json")
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["reconciled"]["deleted"] == 1
    assert _live(sb) == live - {planted}
    assert snapzen(env, "ledger", "verify").returncode == 0


def _run_like_the_service(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What `snapzen run` does (commands.service): the scheduler with the sync pass and the
    daily sweep, driven by a schedule clock that makes the sweep due right after the first
    pass."""
    from snapzen.commands.service import Scheduler, retention_job, sync_pass
    from snapzen.support.settings import load_settings

    for name in [n for n in list(__import__("os").environ) if n.startswith("SNAPZEN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("SNAPZEN_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    stop = threading.Event()
    now = [datetime(2024, 5, 1, 3, 29, 0)]  # the schedule's clock only (not snapzen's)
    exits: list[int] = []

    def wait(seconds: float) -> bool:
        now[0] += timedelta(seconds=seconds)
        return stop.is_set()

    pass_fn = sync_pass(settings, stop, patience=timedelta(seconds=30))

    def one_pass() -> int:
        exits.append(pass_fn())
        return exits[-1]

    sweeps: list[object] = []
    daily = retention_job(settings)
    assert daily is not None

    def sweep() -> object:
        sweeps.append(time.monotonic())
        return daily()

    Scheduler(
        one_pass, timedelta(hours=1), stop=stop, daily=sweep, daily_at="03:30",
        clock=lambda: now[0], wait=wait, max_passes=2,
    ).run()  # fmt: skip
    assert exits == [1, 1]  # every pass refused (logged), the service itself goes on
    assert len(sweeps) == 1  # the daily sweep ran, and refused


def test_the_clock_offset_moves_everything_a_run_records(make_sandbox: Any, tmp_path: Path) -> None:
    """One clock: a sync under a clock two days behind (allowed: behind can delete nothing
    early) records its run, every event it appends and every log line at that clock's time,
    not the machine's (issue 25, item 6: nothing in snapzen reads the wall clock by itself)."""
    sb = make_sandbox(chats=30, widgets=1, seed=25)
    ledger = tmp_path / "snapzen.db"
    behind = cli_env(sb, ledger, SNAPZEN_LOG__LEVEL="info")
    behind[OFFSET_VARIABLE] = str(-2 * 86400)
    assert snapzen(behind, "init").returncode == 0
    sync = snapzen(behind, "sync")
    assert sync.returncode in (0, 3), sync.stderr
    assert ticket_counts(sb), "the chats older than two days are sent"

    their_now = datetime.now(UTC) - timedelta(days=2)

    def at_their_time(stamp: str) -> bool:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return abs(moment - their_now) < timedelta(minutes=10)

    [created] = _rows(ledger, "SELECT value FROM ledger_meta WHERE name = 'created_at'")
    assert at_their_time(created[0])  # `init`
    runs = _rows(ledger, "SELECT kind, started_at, finished_at FROM runs")
    assert [kind for kind, *_ in runs] == ["sync"]
    assert all(at_their_time(s) and at_their_time(f) for _, s, f in runs), runs
    events = _rows(ledger, "SELECT event, recorded_at FROM events")
    assert {"ledger_bound", "transfer", "run"} <= {e for e, _ in events}, events
    assert all(at_their_time(t) for _, t in events), events
    lines = [json.loads(x) for x in sync.stderr.splitlines() if x.startswith("{")]
    assert lines and all(at_their_time(str(line["timestamp"])) for line in lines)
