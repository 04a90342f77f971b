"""The CLI as ops use it: summary line, exit codes, JSON logs with a run id, no secrets or
personal data in anything printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from snapzen.cli import app
from tests import fakes
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()
EMAILS = ["alice.secret@example.org", "bob@visitor.example"]


def seed(apis: SandboxApis) -> None:
    apis.add_cases(
        "w1",
        [
            make_case("a", started=recent(200), email=EMAILS[0], name="Alice"),
            make_case("b", started=recent(200), email=EMAILS[1], consent="no"),
            make_case("c", started=recent(200), email="broken@", country="US"),
        ],
    )


def test_sync_prints_summary_and_logs_json_without_secrets(
    sync_env: Path, apis: SandboxApis
) -> None:
    seed(apis)
    apis.item_errors["snapengage:c"] = f"Requester: {EMAILS[0]} is invalid"  # echoes an email
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 3, result.output  # one case failed
    assert "created 1, withheld 1" in result.stdout

    everything = result.stdout + result.stderr
    for secret in (fakes.SE_TOKEN, fakes.ZD_TOKEN, fakes.LEDGER_KEY, *EMAILS):
        assert secret not in everything
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert events, "no JSON log lines"
    run_ids = {e.get("run_id") for e in events if e["event"] != "zendesk.api_token_deprecated"}
    assert len(run_ids) == 1 and None not in run_ids
    assert any(e["event"] == "run_finished" for e in events)

    status = runner.invoke(app, ["status", "--json"])
    report = json.loads(status.stdout)
    assert status.exit_code == 3
    assert report["widgets"]["w1"]["counts"]["synced"] == 1
    assert report["failed"][0]["case_id"] == "c"
    assert report["last_run"]["outcome"] == "partial"
    for secret in (fakes.SE_TOKEN, fakes.ZD_TOKEN, *EMAILS):
        assert secret not in status.stdout


def test_json_output_keeps_its_warnings_on_stderr(sync_env: Path, apis: SandboxApis) -> None:
    """Asked for JSON, a command prints one document on stdout and still says on stderr what
    needs a look, as the text output does."""
    seed(apis)
    apis.item_errors["snapengage:c"] = "Requester: is invalid"
    assert runner.invoke(app, ["sync"]).exit_code == 3
    result = runner.invoke(app, ["retry", "--all-failed", "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["requeued"] == ["c"]
    assert "1 case(s) failed; see `snapzen status`" in result.stderr


def test_sync_exit_0_when_all_done(sync_env: Path, apis: SandboxApis) -> None:
    seed(apis)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0, result.output


def test_sync_records_the_actor_given_or_the_login_name(
    sync_env: Path, apis: SandboxApis, monkeypatch
) -> None:
    import sqlite3

    seed(apis)
    assert runner.invoke(app, ["sync", "--actor", "ops-bob"]).exit_code == 0
    monkeypatch.setattr("getpass.getuser", lambda: "login-carol")
    assert runner.invoke(app, ["sync"]).exit_code == 0
    with sqlite3.connect(sync_env) as conn:
        actors = [
            r[0] for r in conn.execute("SELECT actor FROM runs WHERE kind = 'sync' ORDER BY rowid")
        ]
    assert actors == ["ops-bob", "login-carol"]


def test_auth_failure_aborts_with_exit_1_and_cursor_unchanged(
    sync_env: Path, apis: SandboxApis, monkeypatch
) -> None:
    seed(apis)
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__API_TOKEN", "wrong-token-value")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "AuthError" in result.stderr and "wrong-token-value" not in result.stderr
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["widgets"]["w1"]["cursor"] is None
    assert status["last_run"]["outcome"] == "aborted"


def test_status_names_cases_at_risk(sync_env: Path, apis: SandboxApis) -> None:
    old = datetime.now(UTC) - timedelta(days=52)
    apis.add_cases("w1", [make_case("old", started=old)])
    apis.item_errors["snapengage:old"] = "Description: cannot be blank"
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 3
    assert "at risk" in result.stderr
    status = runner.invoke(app, ["status", "--json"])
    assert json.loads(status.stdout)["at_risk"][0]["case_id"] == "old"


def _walk(command, path=()):
    # Typer vendors its own click, so walk by duck typing rather than isinstance.
    yield path, command
    if isinstance(getattr(command, "commands", None), dict):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def test_every_command_has_help() -> None:
    import typer

    root = typer.main.get_command(app)
    seen = []
    for path, command in _walk(root):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        seen.append(" ".join(path))
    assert {"sync", "status"} <= set(seen)


def test_unusable_ledger_path_is_one_line_exit_2(sync_env: Path, monkeypatch, tmp_path) -> None:
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    for path in ("/proc/nope/x.db", str(tmp_path), str(not_a_db)):
        monkeypatch.setenv("SNAPZEN_LEDGER__PATH", path)
        for args in (["sync"], ["status"], ["ledger", "verify"]):
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (path, args, result.output)
            assert "Traceback" not in result.output
            lines = [x for x in result.stderr.splitlines() if x.startswith("snapzen")]
            assert len(lines) == 1, (path, args, result.stderr)
            assert "ledger.path" in lines[0] or "LEDGER__PATH" in lines[0], lines
