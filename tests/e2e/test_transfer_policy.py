"""The transfer policy end to end (issue 26): the real `snapzen` CLI against the sandbox, per
regime and per basis, each outcome read back from the ledger rows and the sandbox's truth."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.conftest import cli_env, init_ledger, snapzen, status_json
from tests.fakes import RECORD_ENV

DPF_ZENDESK = {
    "name": "Zendesk, Inc.",
    "country": "US",
    "system": "zendesk",
    "basis": "adequacy",
    "certification": "Data Privacy Framework list: Zendesk, Inc. (with the UK Extension)",
    "checked_on": "2026-12-01",
}


def decisions(ledger: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(ledger) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT case_id, event, legal_basis, destination_country, mechanism_ref, "
            "consent_value, details FROM events "
            "WHERE event IN ('transfer', 'withheld', 'sent') ORDER BY seq"
        ).fetchall()
    out = [dict(row) for row in rows]
    for row in out:
        row["details"] = json.loads(row["details"] or "{}")
    return out


def refused_on_page(truth: list[dict[str, Any]]) -> set[str]:
    """Chats whose visitor answered no on the page (the only source read by default)."""
    return {
        r["id"]
        for r in truth
        if r["consent"] == "refused" and r["consent_source"] == "javascript_variables"
    }


def synced(make_sandbox: Any, tmp_path: Path, **env: str) -> tuple[Any, Path, Any]:
    sb = make_sandbox(chats=60, seed=5)
    ledger = tmp_path / "snapzen.db"
    environment = cli_env(sb, ledger, **env)
    init_ledger(environment)
    done = snapzen(environment, "sync")
    assert done.returncode == 0, done.stderr
    return sb, ledger, (environment, done)


def test_uk_controller_with_a_dpf_listed_us_recipient_needs_no_consent(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb, ledger, (env, done) = synced(
        make_sandbox, tmp_path, SNAPZEN_TRANSFER__RECIPIENTS=json.dumps([DPF_ZENDESK])
    )
    rows = decisions(ledger)
    sent = [r for r in rows if r["event"] == "transfer"]
    withheld = [r for r in rows if r["event"] == "withheld"]
    assert sent and not [r for r in rows if r["event"] == "sent"]  # every chat restricted
    for row in sent:
        assert row["legal_basis"] == "art45"
        assert "SI 2023/1028" in row["mechanism_ref"]
        assert row["details"]["regime"] == "uk_gdpr"
        assert row["details"]["recipient_basis"] == "adequacy"
        assert row["details"]["certification"] == DPF_ZENDESK["certification"]
    # None needed consent: chats with no answer at all went too.
    assert any(row["consent_value"] is None for row in sent)
    # Only a refusal on the page held a chat back.
    assert {r["details"]["reason"] for r in withheld} <= {"consent_refused"}
    decided = {r["case_id"] for r in sent + withheld}
    assert {r["case_id"] for r in withheld} == refused_on_page(sb.truth()) & decided
    assert "derogation" not in done.stderr
    assert status_json(env)["derogation_transfers"] == {}


def test_an_australian_recipient_declared_adequate_is_refused_before_any_call(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=5, seed=5)
    australia = {**DPF_ZENDESK, "name": "Zendesk AU", "country": "AU"}
    env = cli_env(sb, tmp_path / "snapzen.db", SNAPZEN_TRANSFER__RECIPIENTS=json.dumps([australia]))
    init_ledger(env)
    done = snapzen(env, "sync")
    assert done.returncode == 2
    assert "AU is not on the UK GDPR adequacy list" in done.stderr
    assert "basis = 'safeguards'" in done.stderr  # the fix is named
    assert sum(sb.state()["requests"].values()) == 0


def test_uk_controller_with_an_irish_recipient_is_a_restricted_transfer_under_uk_adequacy(
    make_sandbox: Any, tmp_path: Path
) -> None:
    ireland = {"name": "Zendesk (EU hosting)", "country": "IE", "system": "zendesk"}
    ireland["basis"] = "adequacy"
    _, ledger, (env, _) = synced(
        make_sandbox, tmp_path, SNAPZEN_TRANSFER__RECIPIENTS=json.dumps([ireland])
    )
    rows = decisions(ledger)
    sent = [r for r in rows if r["event"] == "transfer"]
    assert sent and not [r for r in rows if r["event"] == "sent"]
    for row in sent:
        assert (row["destination_country"], row["legal_basis"]) == ("IE", "art45")
        assert row["mechanism_ref"] == "UK GDPR: DPA 2018 Sch. 21 para. 5 (EEA states)"
        assert row["details"]["regime"] == "uk_gdpr"
    # A record with holes is refused, naming each missing field.
    refused = snapzen(env, "ledger", "report")
    assert refused.returncode == 2
    for field in ("record.controller", "record.contact", "record.lawful_basis"):
        assert field in refused.stderr
    assert "record.security_measures (SNAPZEN_RECORD__SECURITY_MEASURES)" in refused.stderr
    report = snapzen({**env, **RECORD_ENV}, "ledger", "report", "--format", "json")
    assert report.returncode == 0, report.stderr
    record = json.loads(report.stdout)["art30_record"]
    assert {(t["destination_country"], t["legal_basis"]) for t in record["e_transfers"]} == {
        ("IE", "art45")
    }
    assert record["b_lawful_basis"] == RECORD_ENV["SNAPZEN_RECORD__LAWFUL_BASIS"]
    assert record["f_retention"] == "2 years from the chat's start, then deleted"
    assert record["f_snapengage_retention"].startswith("SnapEngage deletes its copy")
    assert "processing activity of its own" in record["f_ledger_retention"]


def test_a_refusal_wins_over_the_chats_own_contract_evidence(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """Every sandbox chat carries a `plan` page variable: taken here as its contract evidence
    (Zendesk's basis a derogation, the default). The refused chats stay withheld; the others
    go under Art. 49(1)(b) with their own reference, and the pass warns with the count."""
    sb, ledger, (env, done) = synced(
        make_sandbox, tmp_path, SNAPZEN_CONSENT__CONTRACT_VARIABLE="plan"
    )
    rows = decisions(ledger)
    withheld = {r["case_id"]: r["details"]["reason"] for r in rows if r["event"] == "withheld"}
    decided = {r["case_id"] for r in rows}
    refused = refused_on_page(sb.truth()) & decided
    assert refused and {withheld[case] for case in refused} == {"consent_refused"}
    contract = [r for r in rows if r["legal_basis"] == "art49_1b"]
    assert contract
    for row in contract:
        assert row["details"]["contract_reference"] in {"free", "pro", "enterprise"}
    derogated = sum(1 for r in rows if r["legal_basis"] in ("art49_1a", "art49_1b"))
    assert f"WARNING: {derogated} chat(s) sent to Zendesk, Inc. under an Art. 49" in done.stderr
    assert status_json(env)["derogation_transfers"] == {"Zendesk, Inc.": derogated}


def test_consent_without_a_receipt_is_withheld(make_sandbox: Any, tmp_path: Path) -> None:
    """The pages send their receipt under another name than the one configured: no accepted
    consent counts, and nothing else is a basis, so nothing is sent."""
    sb, ledger, _ = synced(
        make_sandbox, tmp_path, SNAPZEN_CONSENT__RECEIPT_VARIABLE="consent_receipt_id"
    )
    rows = decisions(ledger)
    assert [r for r in rows if r["event"] == "transfer"] == []
    assert sb.tickets() == []
    accepted = {
        r["id"]
        for r in sb.truth()
        if r["consent"] == "accepted" and r["consent_source"] == "javascript_variables"
    }
    reasons = {r["case_id"]: r["details"]["reason"] for r in rows if r["event"] == "withheld"}
    assert accepted & set(reasons)
    assert {reasons[case] for case in accepted & set(reasons)} == {"consent_without_evidence"}


def test_two_clients_with_different_controllers_get_two_art30_2_records(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """Processor mode: the company runs chat for a UK client (Zendesk under UK adequacy) and
    a German one (no basis configured: derogations). Each widget's chats are decided under its
    client's regime, the rows name the client, and each client has its own record."""
    sb = make_sandbox(chats=60, seed=5)
    uk_widget, de_widget = sb.widget_ids
    clients = [
        {
            "name": "Shop UK Ltd",
            "contact": "privacy@shop-uk.example",
            "controller_country": "GB",
            "widgets": [uk_widget],
            "recipients": [DPF_ZENDESK],
        },
        {
            "name": "Laden GmbH",
            "contact": "datenschutz@laden.example",
            "controller_country": "DE",
            "widgets": [de_widget],
        },
    ]
    ledger = tmp_path / "snapzen.db"
    env = cli_env(sb, ledger, SNAPZEN_CLIENTS=json.dumps(clients), **RECORD_ENV)
    init_ledger(env)
    done = snapzen(env, "sync")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(ledger) as conn:
        by_widget = dict(
            conn.execute(
                "SELECT widget_id, json_group_array(DISTINCT json_extract(details, '$.client') "
                "|| ' ' || json_extract(details, '$.regime')) FROM events "
                "WHERE event IN ('transfer', 'withheld') GROUP BY widget_id"
            ).fetchall()
        )
    assert json.loads(by_widget[uk_widget]) == ["Shop UK Ltd uk_gdpr"]
    assert json.loads(by_widget[de_widget]) == ["Laden GmbH eu_gdpr"]

    records = {}
    for name in ("Shop UK Ltd", "Laden GmbH"):
        shown = snapzen(env, "ledger", "report", "--client", name, "--format", "json")
        assert shown.returncode == 0, shown.stderr
        records[name] = json.loads(shown.stdout)["art30_2_record"]
    uk, de = records["Shop UK Ltd"], records["Laden GmbH"]
    assert (uk["a_controller"], uk["a_controller_country"]) == ("Shop UK Ltd", "GB")
    assert uk["a_controller_contact"] == "privacy@shop-uk.example"
    assert {t["legal_basis"] for t in uk["c_transfers"]} == {"art45"}
    assert (de["a_controller"], de["a_controller_country"]) == ("Laden GmbH", "DE")
    assert {t["legal_basis"] for t in de["c_transfers"]} <= {"art49_1a"}
    assert "Art. 49 derogation only" in de["c_recipient_bases"][0]

    own = snapzen(env, "ledger", "report", "--format", "json")
    assert own.returncode == 0, own.stderr
    record = json.loads(own.stdout)["art30_record"]
    assert record["e_transfers"] == []  # every chat was a client's
    assert [c["client"] for c in record["clients"]] == ["Shop UK Ltd", "Laden GmbH"]
    # Without the client's contact on file, its Art. 30(2) record is refused.
    no_contact = json.dumps([clients[0], {**clients[1], "contact": ""}])
    uncontactable = snapzen(
        {**env, "SNAPZEN_CLIENTS": no_contact}, "ledger", "report", "--client", "Laden GmbH"
    )
    assert uncontactable.returncode == 2
    assert "clients[Laden GmbH].contact" in uncontactable.stderr
    unknown = snapzen(env, "ledger", "report", "--client", "Nobody")
    assert unknown.returncode == 2
    assert "no such client" in unknown.stderr
