"""An auditor on their own machine: the ledger file, a public key, perhaps the ledger key, and
no sync settings at all. The read-only evidence commands must work with that (issue 24, 5),
through the real CLI, with an environment holding only SNAPZEN_LEDGER__PATH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from tests.ledger_fixtures import ALICE, KEY_TEXT

runner = CliRunner()


@pytest.fixture(autouse=True)
def only_the_ledger(monkeypatch: pytest.MonkeyPatch, ledger_path: Path) -> None:
    """Nothing but the ledger's path (the conftest's controller country included is gone;
    SNAPZEN_SECRETS_DIR, no setting, still points at an empty place)."""
    for name in list(os.environ):
        if name.startswith("SNAPZEN_") and name != "SNAPZEN_SECRETS_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))


def snapzen(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def signed_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """What the operator hands over: a checkpoint and the public key (signing reads the
    ledger and the private key only, so it too needs no sync settings)."""
    private, public = tmp_path / "op.pem", tmp_path / "op.pub.pem"
    point = tmp_path / "head.json"
    assert snapzen("ledger", "keygen", str(private), str(public))[0] == 0
    code, _, err = snapzen("ledger", "checkpoint", str(point), "--signing-key", str(private))
    assert code == 0, err
    return point, public


def test_a_sync_command_still_refuses_that_environment() -> None:
    """The baseline: without a controller country nothing that decides or sends may start."""
    code, _, err = snapzen("status")
    assert code == 2 and "transfer.controller_country is required" in err


def test_verify_with_the_file_and_a_public_key_only(tmp_path: Path) -> None:
    point, public = signed_checkpoint(tmp_path)
    code, out, err = snapzen(
        "ledger", "verify", "--checkpoint", str(point), "--public-key", str(public)
    )
    assert code == 0, err
    assert "ledger OK: 10 ledger rows" in out and "1 checkpoint(s) match" in out


def test_list_export_and_report_need_no_sync_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = snapzen("ledger", "list", "--format", "json")
    assert code == 0, err
    assert [row["seq"] for row in json.loads(out)] == list(range(1, 11))
    target = tmp_path / "rows.csv"
    code, _, err = snapzen("ledger", "export", str(target))
    assert code == 0, err
    assert len(target.read_text(encoding="utf-8").splitlines()) == 11  # header + 10 rows
    # The Art. 30 record's own fields are its content (issue 26, 7): without them it refuses,
    # naming them and nothing of the sync settings; with them, and still no sync setting, it
    # is produced.
    code, out, err = snapzen("ledger", "report", "--format", "json")
    assert code == 2
    assert "record.controller (SNAPZEN_RECORD__CONTROLLER)" in err
    assert "SNAPENGAGE" not in err and "ZENDESK" not in err
    record_env(monkeypatch)
    code, out, err = snapzen("ledger", "report", "--format", "json")
    assert code == 0, err
    record = json.loads(out)["art30_record"]
    assert record["a_controller_country"] == "GB"
    assert record["f_retention"] == "2 years from the chat's start, then deleted"


def record_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an auditor's report needs besides the ledger: the record's fields only."""
    from tests import fakes

    for name, value in fakes.RECORD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "GB")


def test_subject_needs_only_the_ledger_key_besides(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = snapzen("ledger", "subject", "--email", ALICE, "--format", "json")
    assert code == 2
    assert "setting ledger.key is required; set SNAPZEN_LEDGER__KEY" in err
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    code, out, err = snapzen("ledger", "subject", "--email", ALICE, "--format", "json")
    assert code == 0, err
    assert [row["case_id"] for row in json.loads(out)] == ["case-3", "case-6", "case-9"]


def test_serve_prepares_its_snapshot_without_sync_settings(tmp_path: Path) -> None:
    code, out, err = snapzen(
        "ledger", "serve", "--prepare-only", "--workdir", str(tmp_path / "web")
    )
    assert code == 0, err
    assert "datasette" in out and "snapshot" in err


def test_a_bad_ledger_setting_still_stops_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the sections they do not need are looked past: a mistyped [ledger] key is not."""
    monkeypatch.setenv("SNAPZEN_LEDGER__PAHT", "/elsewhere.db")
    code, _, err = snapzen("ledger", "list")
    assert code == 2
    assert "unknown setting SNAPZEN_LEDGER__PAHT; did you mean SNAPZEN_LEDGER__PATH?" in err


def test_an_altered_checkpoint_file_is_reported_as_a_bad_file(tmp_path: Path) -> None:
    point, public = signed_checkpoint(tmp_path)
    data = json.loads(point.read_text(encoding="utf-8"))
    data["row_count"] = data["row_count"] + 1  # the file, not the ledger, was edited
    point.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = snapzen(
        "ledger", "verify", "--checkpoint", str(point), "--public-key", str(public)
    )
    assert code == 1
    assert f"bad checkpoint file: checkpoint {point} signature does not verify" in err
    assert "first bad row" not in err and "TAMPERED" not in err
    assert "the ledger itself verifies (10 rows, head seq 10)" in err


def test_a_section_with_a_bad_value_still_gives_its_good_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report reads [transfer] where it loads: a bad value beside the retention does not
    stop it, nor turn the configured retention back into the default."""
    record_env(monkeypatch)
    monkeypatch.setenv("SNAPZEN_TRANSFER__RETENTION_YEARS", "3")
    monkeypatch.setenv("SNAPZEN_TRANSFER__CLOCK_MARGIN_DAYS", "0")
    code, out, err = snapzen("ledger", "report", "--format", "json")
    assert code == 0, err
    retention = json.loads(out)["art30_record"]["f_retention"]
    assert retention == "3 years from the chat's start, then deleted"
