"""The Art. 30 report and the access pack state the same retention (issue 24, 7): `[record]
retention` as written, or, when it is empty, the one the retention settings apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands.access_request import information
from snapzen.support.settings import load_settings

runner = CliRunner()


def report_retention() -> str:
    result = runner.invoke(app, ["ledger", "report", "--format", "json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["art30_record"]["f_retention"])


@pytest.mark.parametrize(
    ("env", "stated"),
    [
        ({}, "2 years from the chat's start, then deleted"),
        ({"SNAPZEN_TRANSFER__RETENTION_YEARS": "3"}, "3 years from the chat's start, then deleted"),
        ({"SNAPZEN_TRANSFER__RETENTION_YEARS": "1"}, "1 year from the chat's start, then deleted"),
        (
            {"SNAPZEN_RECORD__RETENTION": "Until the contract ends, then 6 months"},
            "Until the contract ends, then 6 months",
        ),
    ],
)
def test_report_and_access_pack_state_the_same_retention(
    monkeypatch: pytest.MonkeyPatch, ledger_path: Path, env: dict[str, str], stated: str
) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert report_retention() == stated
    assert information(load_settings())["retention"] == stated
    text = runner.invoke(app, ["ledger", "report"]).stdout
    assert f"(f) Time limits for erasure: {stated}." in " ".join(text.split())
