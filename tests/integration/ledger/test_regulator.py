"""GDPR as a regulator reads it, end to end through a real sync (the in-process sandbox) and
the `snapzen ledger` commands: who counts as transferred, whose consent counts, one person
per subject reference, a decision log the working tables must agree with, old ledgers
still verifiable, the Art. 30 record."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from snapzen.cli import ledger as ledger_cli
from snapzen.clients.deletion import TicketDeleter
from snapzen.commands import clients, service
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support.settings import Settings, load_settings
from tests.fakes import FakeDeleter, SandboxApis, make_case, recent

runner = CliRunner()
FIXTURE_V1 = Path(__file__).resolve().parents[2] / "fixtures" / "ledger_v1.db"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(ledger_cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def rows(ledger: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as conn:
        return conn.execute(sql, params).fetchall()


def ticket_ids(apis: SandboxApis) -> dict[str, int]:
    """Case id → the id Zendesk gave its ticket."""
    return {t["external_id"].removeprefix("snapengage:"): t["id"] for t in apis.tickets}


def sync(apis: SandboxApis, cases: list[dict[str, Any]]) -> Settings:
    settings = load_settings()
    apis.add_cases("w1", cases)
    result = service.sync(settings)
    assert result.exit_code == 0
    return settings


def test_irish_controller_every_ticket_has_its_transfer_row(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch, apis: SandboxApis
) -> None:
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "IE")
    sync(
        apis,
        [
            make_case("us-consent", started=recent(300), country="US", consent="yes"),
            make_case("us-none", started=recent(290), country="US", consent=None),
            make_case("de-consent", started=recent(280), country="DE", consent="yes"),
            make_case(
                "agent-said-yes",
                started=recent(270),
                country="JP",
                consent="yes",
                consent_in="operator_variables",
            ),
        ],
    )
    tickets = ticket_ids(apis)
    assert set(tickets) == {"us-consent", "de-consent"}
    transfers = rows(
        sync_env,
        """SELECT case_id, ticket_id, origin_country, destination_country, legal_basis,
                  consent_source, consent_observed_at, data_categories, details
           FROM events WHERE event = 'transfer' ORDER BY case_id""",
    )
    # Every ticket has its transfer row, with a basis, whatever the visitor's country.
    assert {r[0]: r[1] for r in transfers} == tickets
    for _, _, _, destination, basis, source, observed, categories, details in transfers:
        assert (destination, basis, source) == ("US", "art49_1a", "javascript_variables")
        assert observed is None  # the chat's start is not when consent was given
        assert json.loads(details)["chat_started_at"]
        assert json.loads(categories) == ["identity", "contact_data", "chat_content"]
    assert {r[0]: r[2] for r in transfers}["us-consent"] == "US"  # recorded, not decisive
    withheld = dict(
        rows(
            sync_env,
            "SELECT case_id, json_extract(details, '$.reason') FROM events "
            "WHERE event = 'withheld'",
        )
    )
    assert withheld == {"us-none": "no_consent_recorded", "agent-said-yes": "no_consent_recorded"}
    code, out, err = run("verify")
    assert code == 0, err
    assert "cases and runs agree with the chain: 4 cases" in out


def test_operator_variable_consent_counts_only_when_configured(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch, apis: SandboxApis
) -> None:
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "GB")
    monkeypatch.setenv("SNAPZEN_CONSENT__SOURCES", "javascript_variables,operator_variables")
    sync(apis, [make_case("op", started=recent(), consent="yes", consent_in="operator_variables")])
    assert rows(sync_env, "SELECT consent_source FROM events WHERE event = 'transfer'") == [
        ("operator_variables",)
    ]


@pytest.fixture
def synced(sync_env: Path, apis: SandboxApis) -> Path:
    """A US controller's sync: one sent without restriction, one transfer, one withheld."""
    sync(
        apis,
        [
            make_case("sent", started=recent(300), country="US", consent=None),
            make_case("moved", started=recent(290), country="FR", consent="yes"),
            make_case("refused", started=recent(280), country="FR", consent="no"),
        ],
    )
    return sync_env


@pytest.mark.parametrize(
    ("tampering", "named"),
    [
        (
            "UPDATE cases SET status = 'synced', ticket_id = 99 WHERE case_id = 'refused'",
            "case refused is synced, the chain recorded withheld",
        ),
        (
            "UPDATE cases SET ticket_id = ticket_id + 1000 WHERE case_id = 'moved'",
            "case moved: ticket_id is",
        ),
        (
            "UPDATE cases SET ticket_id = ticket_id + 1000 WHERE case_id = 'sent'",
            "case sent: ticket_id is",
        ),
        ("UPDATE runs SET created = created + 5", "its runs row was edited"),
        ("DELETE FROM runs", "is gone from runs"),
        ("DELETE FROM cases WHERE case_id = 'refused'", "case refused (withheld) is gone"),
    ],
)
def test_verify_names_working_tables_that_disagree_with_the_chain(
    synced: Path, tampering: str, named: str
) -> None:
    assert run("verify")[0] == 0
    with sqlite3.connect(synced) as conn:
        conn.execute(tampering)
    code, _, err = run("verify")
    assert code == 1 and named in err


def test_a_ledger_written_before_the_versioned_chain_stays_verifiable(tmp_path: Path) -> None:
    """tests/fixtures/ledger_v1.db was written by the code before this change (six rows)."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V1, path)
    db = open_db(path)  # migrates the schema; rows stay as written
    result = verify.verify_chain(db.conn)
    assert (result.ok, result.rows) == (True, 6)
    with transaction(db) as conn:
        append_events(conn, [{"event": "expired", "case_id": "c2", "recorded_at": "2026-01-01"}])
    result = verify.verify_chain(db.conn)
    assert (result.ok, result.rows, result.head_seq) == (True, 7, 7)
    versions = db.execute("SELECT chain_version FROM events ORDER BY seq").fetchall()
    assert [v[0] for v in versions] == [None] * 6 + [3]
    db.conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(
            "UPDATE events SET record = json_set(record, '$.origin_country', 'US') WHERE seq = 3"
        )
    problem = verify.verify_chain(open_db(path, read_only=True).conn).first_problem
    assert problem is not None and (problem.seq, problem.kind) == (3, "edited")


def test_a_ledger_written_before_the_versioned_chain_is_verified_read_only_as_migrated(
    tmp_path: Path,
) -> None:
    """An auditor verifying an old file (read-only, so not migrated) gets the verdict the
    migrated copy gets, not an SQL error, and the file is left as it was."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V1, path)
    migrated = tmp_path / "migrated.db"
    shutil.copy(FIXTURE_V1, migrated)
    open_db(migrated).conn.close()
    verdicts = []
    for each in (path, migrated):
        conn = open_db(each, read_only=True).conn
        result = verify.verify_chain(conn)
        found = agreement.check_tables(conn).problems
        verdicts.append((result.ok, result.rows, result.head_hash, [p.kind for p in found]))
        conn.close()
    assert verdicts[0] == verdicts[1] and verdicts[0][:2] == (True, 6)
    assert path.read_bytes() == FIXTURE_V1.read_bytes()


@pytest.fixture
def deleter(monkeypatch: pytest.MonkeyPatch) -> FakeDeleter:
    fake = FakeDeleter()

    def make(settings: Settings) -> TicketDeleter:
        return fake

    monkeypatch.setattr(clients, "ticket_deleter_from", make)
    return fake


def test_an_email_typed_by_twelve_people_erases_nothing(
    sync_env: Path, apis: SandboxApis, deleter: FakeDeleter
) -> None:
    sync(
        apis,
        [
            make_case(f"p{i}", started=recent(300 - i), email="a@b", name=f"Person {i}")
            for i in range(12)
        ],
    )
    assert len(apis.tickets_by_external_id()) == 12
    assert rows(sync_env, "SELECT count(*) FROM cases WHERE subject_ref IS NOT NULL") == [(0,)]
    for command in ("erase", "subject"):
        code, _, err = run(command, "--email", "a@b")
        assert code == 2 and "not a valid email address" in err
    assert deleter.deleted == []


def test_a_reference_shared_by_several_people_must_be_narrowed(
    sync_env: Path, apis: SandboxApis, deleter: FakeDeleter
) -> None:
    shared = "family@example.com"
    sync(
        apis,
        [
            make_case("anna", started=recent(300), email=shared, name="Anna Smith"),
            make_case("ben", started=recent(290), email=shared, name="Ben Smith"),
            make_case("anna-again", started=recent(280), email=shared, name=" anna  SMITH"),
        ],
    )
    tickets = ticket_ids(apis)
    for command in ("subject", "erase"):
        code, _, err = run(command, "--email", shared)
        assert code == 2 and "2 different people" in err
        assert "--case anna" in err and "--case ben" in err and "Smith" not in err
    assert deleter.deleted == []
    code, out, _ = run("subject", "--email", shared, "--case", "ben", "--format", "jsonl")
    assert code == 0 and {json.loads(line)["case_id"] for line in out.splitlines()} == {"ben"}
    code, _, _ = run("erase", "--email", shared, "--ticket", str(tickets["anna"]))
    assert code == 0 and deleter.deleted == [tickets["anna"]]
    code, _, err = run("erase", "--email", shared, "--case", "someone-else")
    assert code == 2 and "not a chat of this email reference" in err
    assert run("verify")[0] == 0


def test_report_is_an_art30_record(synced: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_RECORD__CONTROLLER", "Seed Company Ltd")
    monkeypatch.setenv("SNAPZEN_RECORD__DPO", "dpo@seed.example")
    monkeypatch.setenv("SNAPZEN_RECORD__SECURITY_MEASURES", "TLS,ledger file 0600")
    code, out, err = run("report", "--format", "json")
    assert code == 0, err
    record = json.loads(out)["art30_record"]
    assert record["a_controller"] == "Seed Company Ltd"
    assert record["a_dpo"] == "dpo@seed.example"
    assert record["a_controller_country"] == "US"
    # A controller outside the UK and the EEA: the regime follows each visitor (either may apply).
    assert record["a_regime"] == "UK GDPR or EU GDPR (by the visitor's location, Art. 3(2))"
    assert record["c_personal_data_sent"] == ["chat_content", "contact_data", "identity"]
    assert record["d_recipients"] == ["Zendesk, Inc."]
    assert record["e_transfers"] == [
        {
            "recipient": "Zendesk, Inc.",
            "destination_country": "US",
            "legal_basis": "art49_1a",
            "mechanism_ref": None,
            "transfers": 1,
        }
    ]
    assert record["g_security_measures"] == ["TLS", "ledger file 0600"]
    code, out, _ = run("report")
    assert code == 0 and "(b) Purposes" in out and "(not set)" in out  # representative unset
