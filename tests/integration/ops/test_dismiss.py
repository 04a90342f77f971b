"""`snapzen dismiss`: a failed case that retrying cannot fix is closed by a human, on record."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from snapzen.cli import app
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()


def test_dismissed_case_stops_the_exit_3_and_is_recorded(sync_env: Path, apis: SandboxApis) -> None:
    apis.add_cases("w1", [{"id": "no-start", "type": "chat"}, make_case("ok", started=recent(200))])
    assert runner.invoke(app, ["sync"]).exit_code == 3

    result = runner.invoke(
        app,
        ["dismiss", "--case", "no-start", "--reason", "no start time; agreed with ops",
         "--actor", "alice"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["sync"]).exit_code == 0

    report = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert report["failed"] == []
    assert report["widgets"]["w1"]["counts"]["ignored"] == 1
    import sqlite3

    conn = sqlite3.connect(sync_env)
    status, reason, raw, error = conn.execute(
        "SELECT status, reason, raw, error FROM cases WHERE case_id='no-start'"
    ).fetchone()
    assert (status, raw) == ("ignored", None)
    assert reason == "dismissed: no start time; agreed with ops"
    assert error and "no usable start time" in error  # the last error stays on record
    kind, actor = conn.execute("SELECT kind, actor FROM runs WHERE kind='dismiss'").fetchone()
    assert (kind, actor) == ("dismiss", "alice")
    # One run-id scheme for the pass and the command alike: <kind>-<12 hex>.
    runs = conn.execute("SELECT run_id, kind FROM runs ORDER BY started_at").fetchall()
    assert [kind for _, kind in runs] == ["sync", "dismiss", "sync"]
    assert all(re.fullmatch(rf"{kind}-[0-9a-f]{{12}}", run_id) for run_id, kind in runs)
    chained = {r[0] for r in conn.execute("SELECT run_id FROM events WHERE event = 'run'")}
    assert chained == {run_id for run_id, _ in runs}


def test_dismiss_summary_as_json(sync_env: Path, apis: SandboxApis) -> None:
    apis.add_cases("w1", [{"id": "no-start", "type": "chat"}])
    assert runner.invoke(app, ["sync"]).exit_code == 3
    result = runner.invoke(
        app, ["dismiss", "--case", "no-start", "--reason", "x", "--actor", "al", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["dismissed"] == ["no-start"] and body["actor"] == "al"
    import sqlite3

    with sqlite3.connect(sync_env) as conn:
        assert conn.execute("SELECT run_id FROM runs WHERE kind='dismiss'").fetchone() == (
            body["run_id"],
        )


def test_dismiss_refuses_what_is_not_failed(sync_env: Path, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case("ok", started=recent(200))])
    runner.invoke(app, ["sync"])
    for args, says in (
        (["--case", "ok", "--reason", "x"], "is synced, not failed"),
        (["--case", "nope", "--reason", "x"], "not in the ledger"),
        (["--case", "ok", "--reason", "   "], "--reason is required"),
    ):
        result = runner.invoke(app, ["dismiss", *args])
        assert result.exit_code == 2, args
        assert says in result.stderr
    # A refused dismissal leaves no `runs` row: the check runs under the lock, before the run.
    import sqlite3

    conn = sqlite3.connect(sync_env)
    assert conn.execute("SELECT kind FROM runs").fetchall() == [("sync",)]
