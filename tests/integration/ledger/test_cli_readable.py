"""What auditors read: tables that fit 80 columns, one line per row when piped, a report in
sentences, and evidence files that are never overwritten or mistyped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import clients
from snapzen.ledger.store.db import open_db
from snapzen.support.lock import writer_lock
from tests.integration.ledger.test_cli_ledger import FakeDeleter
from tests.ledger_fixtures import ALICE, KEY_TEXT, append, transfer_fields

runner = CliRunner()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, ledger_path: Path) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    monkeypatch.setenv("SNAPZEN_LOG__LEVEL", "warning")


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_piped_list_is_one_line_per_row_within_80_columns_with_labels() -> None:
    code, out, _ = run("ledger", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 11  # header + 10 rows
    assert max(len(line) for line in lines) <= 80, lines
    assert lines[0].split() == ["#", "when", "(UTC)", "event", "from", "to", "legal", "basis",
                                "ticket"]  # fmt: skip
    assert "Art. 46 safeguards" in lines[1] and "art46" not in out
    assert lines[1].split()[0] == "1" and "2024-02-02 10:00" in lines[1]


def test_columns_and_wide_choose_what_is_shown() -> None:
    code, out, _ = run("ledger", "list", "--columns", "seq,ticket_id,legal_basis")
    assert code == 0 and out.splitlines()[0].split() == ["#", "ticket", "legal", "basis"]
    assert out.splitlines()[1].split() == ["1", "1001", "Art.", "46", "safeguards"]
    code, out, _ = run("ledger", "list", "--wide")
    assert code == 0 and "subject" in out.splitlines()[0] and len(out.splitlines()) == 11
    code, _, err = run("ledger", "list", "--wide", "--columns", "seq")
    assert code == 2 and "--columns and --wide" in err
    code, _, err = run("ledger", "list", "--columns", "seq,nope")
    assert code == 2 and "unknown column 'nope'" in err
    # Machine formats keep the stored codes; --columns picks their fields too.
    code, out, _ = run("ledger", "list", "--format", "csv", "--columns", "seq,legal_basis")
    assert code == 0 and out.splitlines()[:2] == ["seq,legal_basis", "1,art46"]


def test_json_is_an_alias_of_format_json_and_conflicts_are_refused() -> None:
    code, out, _ = run("ledger", "list", "--json")
    assert code == 0 and [row["seq"] for row in json.loads(out)] == list(range(1, 11))
    code, _, err = run("ledger", "list", "--json", "--format", "csv")
    assert code == 2 and "disagree" in err
    code, out, _ = run("ledger", "report", "--json")
    assert code == 0 and json.loads(out)["transfers"] == 10
    code, _, err = run("status", "--json", "--format", "prometheus")
    assert code == 2 and "--json and --format prometheus disagree" in err


def test_report_is_plain_sentences_without_python_reprs(ledger_path: Path) -> None:
    db = open_db(ledger_path)
    # One Art. 49 transfer in one month, over the per-month threshold: "1 month", not "1 months".
    append(db, [transfer_fields(30 + i, legal_basis="art49_1a") for i in range(0, 60, 6)])
    db.conn.close()
    code, out, _ = run("ledger", "report", "--art49-max-per-month", "5")
    assert code == 0
    assert "{" not in out and "[" not in out and "'art" not in out and "None" not in out
    assert "20 chats were transferred" in out
    assert "ledger entries: 20 transfers" in out
    assert "Art. 49(1)(a) consent: 10 transfers in 1 month (busiest" in out
    assert "1 months" not in out and "Zendesk, Inc. in US: 20 transfers" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    # The JSON report gives the same advice, word for word (one text for both forms).
    code, body, _ = run("ledger", "report", "--json", "--art49-max-per-month", "5")
    warning = json.loads(body)["art49_warning"]
    advice = warning[warning.index("EDPB Guidelines") :]
    assert code == 0 and "more than 5 transfers in one month" in advice
    assert advice in " ".join(out.split())


def test_export_refuses_to_overwrite_and_checks_the_file_type(tmp_path: Path) -> None:
    target = tmp_path / "ledger.csv"
    assert run("ledger", "export", str(target))[0] == 0
    first = target.read_text()
    code, _, err = run("ledger", "export", str(target))
    assert code == 2 and "--overwrite" in err and target.read_text() == first
    assert run("ledger", "export", str(target), "--overwrite")[0] == 0
    code, _, err = run("ledger", "export", str(tmp_path / "t.xlsx"))
    assert code == 2 and ".xlsx" in err and not (tmp_path / "t.xlsx").exists()
    code, _, err = run("ledger", "export", str(tmp_path / "t.csv"), "--format", "json")
    assert code == 2 and "give one" in err
    code, out, _ = run("ledger", "export", "-", "--json")
    assert code == 0 and len(json.loads(out)) == 10
    # --json names the data's format: a refusal is one line on stderr, never a JSON document
    # on stdout (with FILE '-', stdout is the data stream a pipe reads).
    code, out, err = run("ledger", "export", str(tmp_path / "t.csv"), "--json")
    assert code == 2 and out == "" and "give one" in err


def test_checkpoint_is_never_overwritten_silently(tmp_path: Path) -> None:
    key = tmp_path / "operator.pem"
    assert run("ledger", "keygen", str(key), str(tmp_path / "operator.pub.pem"))[0] == 0
    target = tmp_path / "head.json"
    sign = ("--signing-key", str(key))
    assert run("ledger", "checkpoint", str(target), *sign)[0] == 0
    before = target.read_text()
    code, _, err = run("ledger", "checkpoint", str(target), *sign)
    assert code == 2 and "--overwrite" in err and target.read_text() == before
    assert run("ledger", "checkpoint", str(target), "--overwrite", *sign)[0] == 0
    code, _, err = run("ledger", "checkpoint", str(tmp_path / "head.txt"), *sign)
    assert code == 2 and "JSON" in err


def test_erase_takes_wait_and_records_the_login_name_by_default(
    monkeypatch: pytest.MonkeyPatch, ledger_path: Path
) -> None:
    monkeypatch.setattr(clients, "ticket_deleter_from", lambda settings: FakeDeleter())
    monkeypatch.setenv("USER", "dpo-login")
    monkeypatch.setenv("LOGNAME", "dpo-login")
    with writer_lock(ledger_path):
        code, _, err = run("ledger", "erase", "--email", ALICE)
        assert code == 1 and "erasure NOT done" in err and "--wait" in err
    code, _, _ = run("ledger", "erase", "--email", ALICE, "--wait")
    assert code == 0
    conn = sqlite3.connect(ledger_path)
    actors = {row[0] for row in conn.execute("SELECT actor FROM events WHERE event='erased'")}
    assert actors == {"dpo-login"}


def test_a_request_refused_for_the_writer_lock_is_told_not_done(ledger_path: Path) -> None:
    """Not "skipped, exit 0" as for a sync: the hold is still to be placed, so the command
    says so and exits 1; once the lock is free the same command places it."""
    with writer_lock(ledger_path):
        code, _, err = run("ledger", "hold", "add", "--ticket", "1", "--reason", "litigation")
        assert code == 1 and "hold change NOT done" in err and "--wait" in err
    code, out, _ = run("ledger", "hold", "add", "--ticket", "1", "--reason", "litigation")
    assert code == 0 and "hold added" in out
