"""`snapzen ledger …` through Typer's CliRunner with settings from the environment."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from snapzen.cli import ledger as ledger_cli
from snapzen.cli.main import app as main_app
from snapzen.clients.deletion import TicketDeleter
from snapzen.commands import clients, ledger_queries
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from tests.fakes import FakeDeleter
from tests.ledger_fixtures import ALICE, KEY, KEY_TEXT, Tamper, append, edit, transfer_fields

runner = CliRunner()
# Read from the command tree: a command added to `snapzen ledger` later is held to the same.
LEDGER = typer.main.get_group(ledger_cli.app)
COMMANDS = list(LEDGER.commands)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, ledger_path: Path) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    monkeypatch.setenv("SNAPZEN_LOG__LEVEL", "warning")


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(ledger_cli.app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0 and "Usage" in out
    assert (LEDGER.commands[command].help or "").strip()


def test_registered_under_the_main_app() -> None:
    result = runner.invoke(main_app, ["ledger", "--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_list_formats() -> None:
    code, out, _ = run("list", "--format", "json", "--widget", "w1")
    assert code == 0 and [r["seq"] for r in json.loads(out)] == [1, 3, 5, 7, 9]
    code, out, _ = run("list", "--format", "csv", "--country", "IE")
    assert [r["seq"] for r in csv.DictReader(io.StringIO(out))] == ["2", "5", "8"]
    code, out, _ = run(
        "list", "--format", "jsonl", "--since", "2024-04-01", "--until", "2024-04-30"
    )
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [3, 9]
    code, out, _ = run("list", "--ticket", "1005")
    assert code == 0 and "1005" in out


def test_list_table_is_capped_only_on_a_terminal_and_says_so_on_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_queries, "TABLE_LIMIT", 4)
    code, out, err = run("list")  # CliRunner's stdout is not a terminal: every row
    assert code == 0 and len(out.splitlines()) == 1 + 10 and "first" not in out + err
    monkeypatch.setattr(ledger_cli, "on_terminal", lambda: True)
    code, out, err = run("list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + 4 + 1 and "the first 4 rows" in lines[-1]
    assert err == ""
    code, out, _ = run("list", "--limit", "10")  # asked for: no note, nothing cut
    assert len(out.splitlines()) == 1 + 10 and "first" not in out


def test_bad_option_values_exit_2() -> None:
    assert run("list", "--basis", "art6")[0] == 2
    assert run("list", "--since", "yesterday")[0] == 2
    assert run("list", "--format", "xml")[0] == 2


def test_missing_database_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "nope.db"))
    code, _, err = run("list")
    assert code == 2 and "no ledger at" in err and "snapzen init" in err
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize(("name", "kind"), [("out.csv", "csv"), ("out.jsonl", "jsonl")])
def test_export(tmp_path: Path, name: str, kind: str) -> None:
    target = tmp_path / "exports" / name
    code, _, err = run("export", str(target))
    assert code == 0 and f"exported 10 rows to {target} ({kind})" in err
    text = target.read_text()
    if kind == "csv":
        assert len(list(csv.DictReader(io.StringIO(text)))) == 10
    else:
        assert len(text.splitlines()) == 10


def test_list_and_export_take_the_same_filters_and_select_the_same_rows() -> None:
    filters = {"--since", "--until", "--widget", "--country", "--basis", "--ticket", "--event"}
    for command in ("list", "export"):
        options = {name for param in LEDGER.commands[command].params for name in param.opts}
        assert filters <= options, command
    for chosen in (["--country", "IE"], ["--widget", "w1", "--since", "2024-04-01"]):
        _, listed, _ = run("list", "--format", "jsonl", *chosen)
        code, exported, _ = run("export", "-", "--format", "jsonl", *chosen)
        assert code == 0 and exported == listed and listed.count("\n") >= 2, chosen


def test_report_json_and_table() -> None:
    code, out, _ = run("report", "--format", "json", "--since", "2024-01-01")
    body = json.loads(out)
    assert code == 0 and body["transfers"] == 10 and body["art49_warning"] is None
    code, out, _ = run("report")
    assert code == 0 and "By month:" in out and "10 chats were transferred" in out
    assert "Legal basis of the transfers:" in out and "withheld" in out


def test_report_warns_about_regular_art49(ledger_path: Path) -> None:
    db = open_db(ledger_path)
    append(db, [transfer_fields(20 + i, legal_basis="art49_1a") for i in range(3)])
    db.conn.close()
    code, out, _ = run("report")
    assert code == 0 and "WARNING: Art. 49" in out and "EDPB" in out
    code, out, _ = run("report", "--format", "json", "--art49-max-months", "5")
    assert json.loads(out)["art49_warning"] is None


def test_subject_never_prints_the_email() -> None:
    code, out, err = run("subject", "--email", ALICE, "--format", "json")
    assert code == 0 and [r["seq"] for r in json.loads(out)] == [3, 6, 9]
    assert "alice" not in (out + err).lower()
    code, out, err = run("subject", "--email", "-", input=f"{ALICE}\n")
    # Piped, the reference goes to stderr so stdout stays one line per row.
    assert code == 0 and "subject reference:" in err and "alice" not in (out + err).lower()


def test_subject_without_rows() -> None:
    code, out, err = run("subject", "--email", "nobody@example.com", "--format", "jsonl")
    assert code == 0 and out == "" and "no ledger rows" in err


def test_subject_needs_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNAPZEN_LEDGER__KEY")
    code, _, err = run("subject", "--email", ALICE)
    assert code == 2 and "SNAPZEN_LEDGER__KEY" in err


def test_erase_dry_run_then_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDeleter()

    def make(settings: Settings) -> TicketDeleter:
        return fake

    monkeypatch.setattr(clients, "ticket_deleter_from", make)
    code, out, err = run("erase", "--email", ALICE, "--dry-run")
    assert code == 0 and "would delete ticket 1003" in out and fake.deleted == []
    code, out, err = run("erase", "--email", ALICE, "--actor", "dpo")
    assert code == 0 and sorted(fake.deleted) == [1003, 1006, 1009]
    assert "deleted: 3" in out and "alice" not in (out + err).lower()
    code, out, _ = run("erase", "--email", ALICE)
    assert code == 0 and "tickets to delete: 0" in out
    assert run("verify")[0] == 0


def test_erase_partial_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = FakeDeleter(refuse=[1006])
    monkeypatch.setattr(clients, "ticket_deleter_from", lambda settings: refusing)
    code, _, err = run("erase", "--email", ALICE)
    assert code == 3 and "1006" in err


def keypair(tmp_path: Path, name: str = "operator") -> tuple[Path, Path]:
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    code, out, _ = run("keygen", str(private), str(public))
    assert code == 0 and "sha256:" in out
    assert private.stat().st_mode & 0o777 == 0o600
    return private, public


def test_checkpoint_and_verify(tmp_path: Path, tamper: Tamper) -> None:
    private, public = keypair(tmp_path)
    point = tmp_path / "head.json"
    code, out, _ = run("checkpoint", str(point), "--signing-key", str(private))
    assert code == 0 and "seq 10" in out and json.loads(point.read_text())["seq"] == 10
    assert json.loads(point.read_text())["signatures"][0]["key_fingerprint"].startswith("sha256:")
    code, out, _ = run("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert code == 0 and "ledger OK: 10 ledger rows" in out and "1 checkpoint(s) match" in out
    tamper(edit(7, legal_basis="art45"))
    code, _, err = run("verify")
    assert code == 1
    assert "ledger TAMPERED: first bad row seq 7: row content does not match its hash" in err


def test_a_checkpoint_not_named_json_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    private, _ = keypair(tmp_path)
    point = tmp_path / "head.txt"
    code, _, err = run("checkpoint", str(point), "--signing-key", str(private))
    assert code == 2 and f"{point}: a checkpoint is JSON; name it *.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ledger.db", "operator.pem", "operator.pub.pem"]
    )


def test_verify_needs_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regulator holds the public key and the checkpoint, never the ledger key."""
    private, public = keypair(tmp_path)
    point = tmp_path / "head.json"
    run("checkpoint", str(point), "--signing-key", str(private))
    monkeypatch.delenv("SNAPZEN_LEDGER__KEY")
    code, out, err = run("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert code == 0 and "1 checkpoint(s) match" in out, err


def test_verify_detects_truncation_only_with_checkpoint(tmp_path: Path, tamper: Tamper) -> None:
    private, public = keypair(tmp_path)
    point = tmp_path / "head.json"
    run("checkpoint", str(point), "--signing-key", str(private))
    tamper("DELETE FROM events WHERE seq = 10")
    code, _, err = run("verify")  # the case row still says synced: named
    assert code == 1 and "case-10 is synced: no decision in the chain" in err
    tamper("DELETE FROM cases WHERE case_id = 'case-10'")  # a thorough attacker
    code, out, _ = run("verify")
    assert code == 0 and "only a checkpoint" in out  # says what it cannot see
    code, _, err = run("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert code == 1 and "first bad row seq 10" in err


@pytest.mark.parametrize("thorough", [[], ["--thorough"]])
@pytest.mark.parametrize("dropped", [["update"], ["delete"], ["update", "delete"]])
def test_verify_names_a_dropped_append_only_trigger(
    ledger_path: Path, dropped: list[str], thorough: list[str]
) -> None:
    """Rows and hashes intact, but the file no longer refuses UPDATE or DELETE: not OK."""
    with sqlite3.connect(ledger_path) as conn:
        for verb in dropped:
            conn.execute(f"DROP TRIGGER events_no_{verb}")
    code, out, err = run("verify", *thorough)
    names = " and ".join(f"events_no_{verb}" for verb in dropped)
    assert code == 1 and "ledger OK" not in out
    assert f"trigger {names} missing: events no longer refuses" in err
    assert len([line for line in err.splitlines() if "trigger" in line]) == 1


def test_checkpoint_refuses_a_ledger_whose_trigger_was_dropped(
    tmp_path: Path, ledger_path: Path
) -> None:
    private, _ = keypair(tmp_path)
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
    code, _, err = run("checkpoint", str(tmp_path / "head.json"), "--signing-key", str(private))
    assert code == 1 and "not signing: trigger events_no_delete missing" in err
    assert not (tmp_path / "head.json").exists()


def test_an_edited_row_is_named_first_when_its_trigger_was_dropped_to_edit_it(
    tmp_path: Path, ledger_path: Path
) -> None:
    """The usual tampering: drop the trigger, edit a row, leave. Verify, checkpoint and
    restore name the edited row as the first bad one (as before verify named missing
    triggers), and verify names the missing trigger too."""
    private, _ = keypair(tmp_path)
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(edit(3, case_id="case-x"))
    code, out, err = run("verify")
    assert code == 1 and "ledger OK" not in out
    assert "ledger TAMPERED: first bad row seq 3: row content does not match its hash" in err
    assert "also: trigger events_no_update missing" in err
    code, _, err = run("checkpoint", str(tmp_path / "head.json"), "--signing-key", str(private))
    assert code == 1 and "not signing: seq 3: row content does not match its hash" in err


def test_verify_forged_checkpoint_exits_1(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    point = tmp_path / "head.json"
    run("checkpoint", str(point), "--signing-key", str(private))
    data = json.loads(point.read_text())
    data["hash"] = "f" * 64
    point.write_text(json.dumps(data))
    code, _, err = run("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert code == 1 and "signature does not verify" in err


def test_a_checkpoint_under_another_key_is_reported_as_such(tmp_path: Path) -> None:
    private, _ = keypair(tmp_path)
    _, other_public = keypair(tmp_path, "someone-else")
    point = tmp_path / "head.json"
    run("checkpoint", str(point), "--signing-key", str(private))
    code, _, err = run("verify", "--checkpoint", str(point), "--public-key", str(other_public))
    assert code == 2 and "another key" in err and "TAMPERED" not in err


def test_auditors_cosign_and_verify_with_their_own_key(tmp_path: Path) -> None:
    private, _ = keypair(tmp_path)
    auditor_private, auditor_public = keypair(tmp_path, "auditor")
    point = tmp_path / "head.json"
    run("checkpoint", str(point), "--signing-key", str(private))
    code, out, _ = run("cosign", str(point), "--signing-key", str(auditor_private))
    assert code == 0 and "co-signed" in out
    assert len(json.loads(point.read_text())["signatures"]) == 2
    code, out, _ = run("verify", "--checkpoint", str(point), "--public-key", str(auditor_public))
    assert code == 0 and "1 checkpoint(s) match" in out


def test_verify_bad_checkpoint_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run("verify", "--checkpoint", str(bad))
    assert code == 2 and "bad.json" in err
    assert run("verify", "--checkpoint", str(tmp_path / "missing.json"))[0] == 2


def test_checkpoint_refuses_a_tampered_ledger(tmp_path: Path, tamper: Tamper) -> None:
    private, _ = keypair(tmp_path)
    tamper("DELETE FROM events WHERE seq = 2")
    code, _, err = run("checkpoint", str(tmp_path / "head.json"), "--signing-key", str(private))
    assert code == 1 and "seq 2" in err and not (tmp_path / "head.json").exists()


def test_serve_prepare_only(tmp_path: Path, ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)
    conn.execute(
        "INSERT INTO cases (case_id, widget_id, status, raw, first_seen_at, updated_at) "
        "VALUES ('c1', 'w1', 'pending', '{\"email\": \"carol@example.com\"}', 'x', 'x')"
    )
    conn.commit()
    conn.close()
    work = tmp_path / "web"
    code, out, err = run("serve", "--prepare-only", "--workdir", str(work), "--port", "9999")
    assert code == 0 and "-i" in out.split() and "9999" in out.split()
    assert "sha256" in err
    snapshot = (work / "ledger.db").read_bytes()
    assert b"carol@example.com" not in snapshot
    metadata = json.loads((work / "metadata.json").read_text())
    assert "by_subject" in metadata["databases"]["ledger"]["queries"]


def test_typer_app_is_a_typer() -> None:
    assert isinstance(ledger_cli.app, typer.Typer)


def test_erase_waits_for_the_writer_lock_and_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, ledger_path: Path
) -> None:
    from snapzen.support.lock import writer_lock

    monkeypatch.setattr(clients, "ticket_deleter_from", lambda settings: FakeDeleter())
    with writer_lock(ledger_path):
        code, _, err = run("erase", "--email", ALICE, "--lock-wait", "0")
        assert code == 1 and "erasure NOT done" in err
        assert run("erase", "--email", ALICE, "--dry-run")[0] == 0  # reads need no lock


def test_checkpoint_with_the_auditors_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auditor = tmp_path / "auditor.key"
    auditor.write_text("a" * 64 + "\n")
    point = tmp_path / "head.json"
    code, out, _ = run("checkpoint", str(point), "--key-file", str(auditor))
    assert code == 0 and "seq 10" in out
    code, out, _ = run("verify", "--checkpoint", str(point), "--key-file", str(auditor))
    assert code == 0 and "1 checkpoint(s) match" in out
    # The auditors verify without the ledger key: they need not hold it.
    monkeypatch.delenv("SNAPZEN_LEDGER__KEY")
    code, out, _ = run("verify", "--checkpoint", str(point), "--key-file", str(auditor))
    assert code == 0 and "1 checkpoint(s) match" in out


def test_a_checkpoint_forged_with_the_ledger_key_fails_under_the_auditors_key(
    tmp_path: Path, ledger_path: Path
) -> None:
    auditor = tmp_path / "auditor.key"
    auditor.write_text("b" * 40)
    # What an operator holding only the ledger key can make (version 1, HMAC).
    forged = _legacy_checkpoint(tmp_path, ledger_path)
    code, _, err = run("verify", "--checkpoint", str(forged), "--key-file", str(auditor))
    assert code == 1
    assert f"signature does not verify under the key in {auditor}" in err
    assert "b" * 40 not in err


def _legacy_checkpoint(tmp_path: Path, ledger_path: Path) -> Path:
    """A version-1 checkpoint under the ledger key, as the code before Ed25519 wrote it."""
    from snapzen.ledger.evidence import checkpoint as signed

    db = open_db(ledger_path, read_only=True)
    made = signed.make(db.conn, KEY)
    db.conn.close()
    path = tmp_path / "legacy.json"
    signed.write(path, made)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("short", "fewer than 16 characters"),
        (KEY_TEXT, "holds the ledger key"),
        (None, "cannot read key file"),
    ],
)
def test_a_bad_key_file_exits_2_without_showing_the_key(
    tmp_path: Path, content: str | None, message: str
) -> None:
    key_file = tmp_path / "auditor.key"
    if content is not None:
        key_file.write_text(content)
    code, _, err = run("checkpoint", str(tmp_path / "head.json"), "--key-file", str(key_file))
    assert code == 2 and message in err
    assert KEY_TEXT not in err
    assert not (tmp_path / "head.json").exists()


def test_verify_lists_at_most_a_hundred_disagreements(ledger_path: Path, tamper: Tamper) -> None:
    """A cases table emptied (or swapped for another ledger's) names the first 100 and says
    there are more, instead of a line per case."""
    db = open_db(ledger_path)
    append(db, (transfer_fields(i) for i in range(11, 131)))  # 130 synced cases in all
    db.conn.close()
    tamper("DELETE FROM cases")
    code, _, err = run("verify")
    lines = err.strip().splitlines()
    assert code == 1
    assert sum("is gone from cases" in line for line in lines) == 100
    assert lines[-1] == "snapzen: more disagreements than these 100 were found and are not listed"


def test_verify_thorough_runs_the_integrity_check_and_a_redefined_index_is_named(
    ledger_path: Path,
) -> None:
    code, out, _ = run("verify", "--thorough")
    assert code == 0 and "SQLite integrity check ok" in out
    with sqlite3.connect(ledger_path) as conn:  # an index that no longer matches its table
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = replace(sql, '(ticket_id)', '(retention_until)') "
            "WHERE name = 'events_ticket'"
        )
    code, out, err = run("verify")
    assert code == 1 and "index events_ticket on events is not snapzen's" in err
