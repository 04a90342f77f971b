"""Backfill progress: moves per window read, counts cases as they happen, ends on the
backfill's own totals; JSON lines on a timer off a terminal; no log line under the bar."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from snapzen.cli.render import RichProgress
from snapzen.commands.backfill import plan_backfill, run_backfill
from snapzen.commands.backfill_progress import JsonProgress, Tally, log_file
from snapzen.support.log import bound_run, get_logger, logs_to
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import Counts
from tests.fakes import SandboxApis
from tests.integration.ops.test_backfill import TODAY, cli, load_days


class Recording(Tally):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, int]] = []  # (done, fetched, created) at every tick
        self.recorded_calls = 0

    def tick(self, what: str, n: int) -> None:
        super().tick(what, n)
        if self.recorded_calls == 0:
            self.seen.append((self.done, self.fetched, self.created))

    def window_done(self, day: date, widgets: Sequence[str], counts: Counts) -> None:
        self.recorded_calls += 1
        super().window_done(day, widgets, counts)


def test_the_bar_moves_per_window_within_one_slice_and_ends_on_the_totals(
    settings: Settings, apis: SandboxApis
) -> None:
    load_days(apis, range(2, 6))
    plan = plan_backfill(settings, TODAY - timedelta(days=5), TODAY - timedelta(days=2))
    progress = Recording()
    result = run_backfill(settings, plan, progress=progress)  # one 60 s slice: 4 days
    assert result.windows_done == 8 and result.last is not None
    # Before the slice was recorded, windows were already counted one by one...
    done_values = sorted({done for done, _, _ in progress.seen})
    assert done_values == list(range(0, 9)) or done_values == list(range(1, 9))
    # ...and cases fetched and tickets created as they happened.
    assert len({fetched for _, fetched, _ in progress.seen}) >= 4
    assert max(created for _, _, created in progress.seen) == result.counts.created
    assert progress.done == 8 and progress.recorded == 8
    assert (progress.fetched, progress.created) == (result.counts.fetched, result.counts.created)


def test_json_progress_comes_at_the_interval_as_log_lines_with_the_run(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = JsonProgress(every=0.05)
    with logs_to(out), bound_run("run-abc", "backfill"):
        progress.start(4, 1)
        progress.tick("fetched", 3)
        time.sleep(0.4)  # nothing else happens: lines still come
        progress.finish()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) >= 5, lines  # start, >= 3 beats in 0.4 s, end
    for line in lines:
        assert line["event"] == "backfill_progress" and line["level"] == "info"
        assert line["timestamp"].endswith("Z") and line["run_id"] == "run-abc"
        assert line["run_kind"] == "backfill"
    assert lines[0]["windows_done"] == 1 and lines[-1]["fetched"] == 3


def test_log_lines_go_to_a_file_while_the_bar_is_drawn(tmp_path: Path) -> None:
    screen = io.StringIO()
    bar = RichProgress(console=Console(file=screen, force_terminal=True, width=80))
    path = tmp_path / "backfill.log"
    with log_file(path) as written:
        bar.start(4, 0)
        get_logger("test").warning("slow_page", widget_id="w1")
        bar.tick("window", 1)
        bar.tick("created", 1829)
        bar.window_done(TODAY, ["w1", "w2", "w3", "w4"], Counts(fetched=1900, created=1829))
        bar.finish()
    shown = screen.getvalue()
    assert "slow_page" not in shown and "slow_page" in path.read_text()
    assert written.problems == 1
    assert "4/4" in shown and "created 1,829" in shown
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "\n")
    assert all(len(line) <= 80 for line in plain.splitlines())


def test_cli_progress_lines_count_every_window(sync_env: Path, apis: SandboxApis) -> None:
    load_days(apis, range(2, 4), per_day=1)
    since, until = (TODAY - timedelta(days=3)).isoformat(), (TODAY - timedelta(days=2)).isoformat()
    code, _, err = cli("backfill", "--since", since, "--until", until, "--progress-every", "0")
    assert code == 0
    lines = [json.loads(x) for x in err.splitlines() if '"backfill_progress"' in x]
    assert {line["windows_done"] for line in lines} == {0, 1, 2, 3, 4}
    assert all(line["level"] == "info" and line["timestamp"].endswith("Z") for line in lines)
    assert lines[-1]["created"] == 2 and lines[-1]["windows_recorded"] == 4


def test_sync_and_backfill_summaries_as_json(sync_env: Path, apis: SandboxApis) -> None:
    load_days(apis, range(2, 4), per_day=1)
    since, until = (TODAY - timedelta(days=3)).isoformat(), (TODAY - timedelta(days=2)).isoformat()
    code, out, _ = cli("backfill", "--since", since, "--until", until, "--json")
    body = json.loads(out)
    assert code == 0 and body["windows_done"] == 4 and body["created"] == 2
    assert body["dry_run"] is None and body["exit_code"] == 0
    code, out, _ = cli("sync", "--format", "json")
    body = json.loads(out)
    assert code == 0 and body["created"] == 0 and body["at_risk"] == [] and body["run_id"]
    code, _, err = cli("sync", "--json", "--format", "table")
    assert code == 2 and "disagree" in err


def test_an_interrupted_slice_leaves_the_bar_where_it_was() -> None:
    # issue 24: SIGTERM mid-slice made the bar jump back to 0/30 (done reset to recorded).
    tally = Tally()
    tally.start(30, 0)
    tally.day_started(TODAY - timedelta(days=3))
    for _ in range(7):
        tally.tick("window", 1)
    tally.tick("created", 12)
    tally.day_started(TODAY - timedelta(days=2))
    tally.finish()  # interrupted: nothing of the slice was recorded
    assert tally.as_dict() == {
        "windows_done": 7,
        "windows_recorded": 0,
        "windows_total": 30,
        "fetched": 0,
        "created": 12,
        "day": (TODAY - timedelta(days=2)).isoformat(),
    }
    # A recorded slice's totals never pull a live count down.
    tally.window_done(TODAY - timedelta(days=3), ["w1"], Counts(fetched=5, created=10))
    assert (tally.created, tally.fetched, tally.done) == (12, 5, 7)
