"""Typos and odd data end in one line and exit 2 (or a flagged status), never a traceback."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.commands import service
from snapzen.commands.backfill import plan_backfill
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()


def _one_line_exit_2(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("snapzen: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--widget", "nope"],
        ["backfill", "--since", "2026-01-01", "--until", "2026-01-02", "--widget", "nope"],
        ["backfill", "--since", "2026-01-01", "--until", "2026-01-02", "-w", "w1", "-w", "nope"],
        ["ledger", "list", "--widget", "nope"],
        ["ledger", "export", "-", "--widget", "nope"],
        ["ledger", "report", "--widget", "nope"],
    ],
)
def test_unknown_widget_is_refused_before_any_state(
    sync_env: Path, apis: SandboxApis, args: list[str]
) -> None:
    apis.add_cases("w1", [make_case("a", started=recent(3600))])
    assert runner.invoke(app, ["sync"]).exit_code == 0  # a ledger to read
    assert "'nope'" in _one_line_exit_2(args)
    with sqlite3.connect(sync_env) as conn:
        assert conn.execute("SELECT COUNT(*) FROM state WHERE widget_id='nope'").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


def test_sync_and_backfill_themselves_refuse_an_unknown_widget_in_the_same_words(
    sync_env: Path, settings: Settings, apis: SandboxApis
) -> None:
    # The one check is the commands' (the CLI only passes --widget on): any caller of
    # commands.service.sync or plan_backfill is refused before the lock, a run or a cursor.
    today = clock.today()
    with pytest.raises(ConfigError) as synced:
        service.sync(settings, widgets=["w1", "nope"])
    with pytest.raises(ConfigError) as planned:
        plan_backfill(settings, today, today, ["nope"])
    assert str(synced.value) == str(planned.value)
    assert str(synced.value) == "--widget 'nope' is not one of snapengage.widgets (w1, w2)"
    with sqlite3.connect(sync_env) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM state").fetchone() == (0,)


@pytest.mark.parametrize(
    "args",
    [
        ["retention", "sweep", "--as-of", "0001-01-01", "--dry-run"],
        ["retention", "sweep", "--as-of", "0001-01-01"],
        ["run", "--every", "99999999d"],
        ["run", "--every", "367d"],
    ],
)
def test_bad_as_of_and_every_are_one_line(sync_env: Path, args: list[str]) -> None:
    _one_line_exit_2(args)


def test_a_chat_dated_in_the_future_is_flagged_by_status(sync_env: Path, apis: SandboxApis) -> None:
    future = make_case("2100", started=datetime(2100, 1, 1, tzinfo=UTC))
    # SnapEngage returned it for today's window (served by its creation time).
    future["created_at_seconds"] = future.pop("created_at_milliseconds") // 1000
    apis.add_cases("w1", [make_case("now", started=recent(3600)), future])
    synced = runner.invoke(app, ["sync", "--format", "json"])
    # The pass itself says so (exit 3, one error line naming the case), not only `status`.
    assert synced.exit_code == 3, synced.output
    assert "chat_dated_in_the_future" in synced.output and '"2100"' in synced.output
    status = runner.invoke(app, ["status", "--json"])
    report = json.loads(status.stdout)
    assert [c["case_id"] for c in report["future_dated"]] == ["2100"]
    assert status.exit_code == 3
    human = runner.invoke(app, ["status"])
    assert "dated in the future: 2100" in human.stdout and human.exit_code == 3


def test_status_shows_the_age_of_a_chat_dated_in_the_future_as_negative(
    sync_env: Path, apis: SandboxApis
) -> None:
    """Its only unsynced chat starts in 2100: the widget's oldest-unsynced age is below zero,
    never read as a chat waiting for decades (the row beside `dated in the future`)."""
    future = make_case("2100", started=datetime(2100, 1, 1, tzinfo=UTC))
    future["created_at_seconds"] = future.pop("created_at_milliseconds") // 1000
    apis.add_cases("w1", [future])
    assert runner.invoke(app, ["sync"]).exit_code == 3
    human = runner.invoke(app, ["status"], env={"COLUMNS": "200"})
    [row] = [line for line in human.stdout.splitlines() if " w1 " in f" {line} "]
    age = [cell.strip() for cell in row.split("│") if cell.strip()][-1]
    assert age.startswith("-") and age.endswith(" days"), row
