"""One list of ledger events and one vocabulary for counts (issue 24): every event the code
appends is in snapzen.ledger.evidence.events, `ledger list --help` names each and `--event` accepts
each; every decision row names its run and actor; the sync summary, `status`, the metrics
and `ledger verify` count the same rows under the same words."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import service
from snapzen.ledger.evidence.events import DECISION_NAMES, STATUS_AFTER, Event
from snapzen.ledger.rights import holds, requests
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent
from tests.ledger_fixtures import KEY_TEXT

SOURCE = Path(__file__).resolve().parents[3] / "snapzen"
runner = CliRunner()


def test_every_event_the_code_appends_is_listed() -> None:
    appended = set(STATUS_AFTER) | {Event.RUN, requests.EVENT}
    appended |= {holds.ADDED, holds.REMOVED}
    for path in SOURCE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        appended |= set(re.findall(r'"event":\s*"([a-z_]+)"', text))
        appended |= set(re.findall(r'^[A-Z_]*EVENT\s*=\s*"([a-z_]+)"', text, re.M))
        appended |= set(re.findall(r'decisions\.decision\(\s*"([a-z_]+)"', text))
    assert appended - {e.value for e in Event} == set()
    assert set(DECISION_NAMES) == set(STATUS_AFTER)


def test_ledger_list_names_and_accepts_every_event(monkeypatch, ledger_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    shown = runner.invoke(app, ["ledger", "list", "--help"], terminal_width=200).stdout
    for event in Event:
        assert event.value in shown, event
        done = runner.invoke(app, ["ledger", "list", "--event", event.value, "--json"])
        assert done.exit_code == 0, (event, done.stderr)
        rows = json.loads(done.stdout)
        assert all(row["event"] == event.value for row in rows)
    assert runner.invoke(app, ["ledger", "list", "--event", "transfers"]).exit_code == 2


def test_every_decision_row_names_its_run_and_actor(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases(
        "w1",
        [
            make_case("sent-1", started=recent(300)),
            make_case("refused-1", started=recent(300), consent="no"),
            make_case("offline-1", started=recent(300), kind="offline"),
        ],
    )
    result = service.sync(settings, actor="dana")
    conn = sqlite3.connect(settings.ledger.path)
    rows = conn.execute(
        "SELECT event, run_id, actor FROM events WHERE event != 'ledger_bound'"
    ).fetchall()
    by_event = {event: (run_id, actor) for event, run_id, actor in rows}
    assert {"transfer", "withheld", "ignored", "run"} <= set(by_event)
    assert set(by_event.values()) == {(result.run_id, "dana")}

    # The same words and numbers everywhere: the pass appended 3 decisions, 1 a transfer.
    assert (result.counts.decisions, result.counts.transfers) == (3, 1)
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    # Ledger rows: the 3 decisions, the run, and the row binding the ledger to its key.
    total = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert total == len(rows) + 1
    assert (status["ledger_rows"], status["decisions"], status["transfers"]) == (total, 3, 1)
    metrics = runner.invoke(app, ["status", "--format", "prometheus"]).stdout
    for line in (
        f"snapzen_ledger_rows {total}",
        "snapzen_ledger_decisions 3",
        "snapzen_ledger_transfers 1",
    ):
        assert line in metrics.splitlines()
    verify = runner.invoke(app, ["ledger", "verify"])
    assert f"ledger OK: {total} ledger rows" in verify.stdout
    summary = runner.invoke(app, ["sync"]).stdout  # a second pass: nothing new
    assert "ledger: decisions 0 (transfers 0)" in summary and "ledger rows" not in summary
