"""Data printed by the CLI is shown as it is: rich never interprets it as markup."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.cli.render import print_rows
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()


def _flat(text: str) -> str:
    """Output without whitespace: rich wraps long lines and table cells to the width."""
    return "".join(text.split())


HOSTILE_ID = "[/]"
LINKED_ID = "[link=https://evil.example]x[/link]"
EMAIL = "visitor.one@example.org"
ERROR = "[bold red]boom[/] :smile: [link=https://evil.example]here[/link]"


def test_status_and_ledger_tables_print_markup_in_data_literally(
    sync_env: Path, apis: SandboxApis
) -> None:
    apis.add_cases(
        "w1",
        [
            make_case(HOSTILE_ID, started=recent(200), email=EMAIL),
            make_case(LINKED_ID, started=recent(200), email=EMAIL),
            make_case("plain", started=recent(200)),
        ],
    )
    apis.item_errors["snapengage:plain"] = "invalid"
    assert runner.invoke(app, ["sync"]).exit_code == 3
    with sqlite3.connect(sync_env) as conn:  # an error text as an API could have sent it
        conn.execute("UPDATE cases SET error = ? WHERE case_id = 'plain'", (ERROR,))

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 3, status.output
    assert _flat(ERROR) in _flat(status.stdout)
    assert "\x1b]8;" not in status.stdout  # no OSC 8 hyperlink


def test_terminal_tables_show_markup_in_cells_literally(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    rows = [{"case_id": HOSTILE_ID, "consent_value": LINKED_ID}, {"case_id": ERROR}]
    assert print_rows(rows, ["case_id", "consent_value"], "[bold]t[/]", plain=False) == 2
    shown = capsys.readouterr().out
    for text in (HOSTILE_ID, LINKED_ID, "[bold]t[/]"):
        assert _flat(text) in _flat(shown)
    assert "\x1b]8;" not in shown


def test_status_notes_never_read_markup_across_values_or_lines(
    sync_env: Path, apis: SandboxApis
) -> None:
    """A tag cannot be made of two values (a case id, then its error), nor a closing tag that
    crashes `status`; a value's newline is shown escaped, in its line, instead of breaking it."""
    opening, closing, dated = "[link=https://evil.example/", "[/", "late\n[/]chat"
    apis.add_cases(
        "w1", [make_case(case, started=recent(200)) for case in (opening, closing, dated)]
    )
    for case in (opening, closing, dated):
        apis.item_errors[f"snapengage:{case}"] = "invalid"
    assert runner.invoke(app, ["sync"]).exit_code == 3
    with sqlite3.connect(sync_env) as conn:  # errors as an API could have sent them
        for case, error in ((opening, "]click to fix"), (closing, "] boom")):
            conn.execute("UPDATE cases SET error = ? WHERE case_id = ?", (error, case))
        conn.execute(  # a chat dated in the future: its line is styled (an alert)
            "UPDATE cases SET started_at = '2099-01-01T00:00:00Z' WHERE case_id = ?", (dated,)
        )

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 3, status.output
    shown = _flat(status.stdout)
    for text in (
        f"failed {opening} (attempts 1): ]click to fix",
        f"failed {closing} (attempts 1): ] boom",
        "dated in the future: late\\n[/]chat (w1)",
    ):
        assert _flat(text) in shown
    assert "\x1b]8;" not in status.stdout  # no OSC 8 hyperlink
