"""Processor mode end to end (issue 27 follow-up), the real CLI against the sandbox: a
visitor with a chat on the company's own widget and one on a client's widget gets an access
pack and an erasure response that name, for each group of chats, its controller (the client,
with its contact from `[[clients]]`) and the company as the client's processor answering on
its behalf (Art. 28(3)(e))."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from snapzen.sandbox.data import Dataset, is_valid_email
from tests.e2e.conftest import cli_env, eligible, init_ledger, snapzen
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e

CLIENT = {"name": "Laden GmbH", "contact": "datenschutz@laden.example",
          "controller_country": "DE"}  # fmt: skip


def same_visitor(dataset: Dataset, case_id: str, other_id: str) -> None:
    """Make ``other_id`` a chat of the visitor of ``case_id`` (their email and name on it): a
    returning visitor, on another widget say (a client's and the company's). Before the
    first sync only, as a real visitor's chats never change once served."""
    by_id = {case["id"]: case for case in dataset.cases}
    source, target = by_id[case_id], by_id[other_id]
    email = source["requested_by"]
    target["requested_by"] = email
    target["requester_details"] = {
        **target["requester_details"],
        "name": source["requester_details"]["name"],
        "emails": [email] if email else [],
    }
    for row in dataset.truth:
        if row["id"] == other_id:
            row["email_valid"] = is_valid_email(email)


def _two_chats(sb: Any) -> tuple[str, str]:
    """An eligible chat with a valid email on each widget: the first one's visitor is made
    the second one's too (a returning visitor)."""
    own, client = sb.widget_ids
    rows = [r for r in sb.app.dataset.truth if eligible(r) and r["email_valid"]]
    first = next(r["id"] for r in rows if r["widget_id"] == own)
    second = next(r["id"] for r in rows if r["widget_id"] == client)
    same_visitor(sb.app.dataset, first, second)
    return first, second


def test_a_mixed_person_gets_one_group_per_controller_in_the_pack_and_the_erasure(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=60, seed=5, widgets=2)
    own_case, client_case = _two_chats(sb)
    email = next(c["requested_by"] for c in sb.app.dataset.cases if c["id"] == own_case)
    clients = [{**CLIENT, "widgets": [sb.widget_ids[1]]}]
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, SNAPZEN_CLIENTS=json.dumps(clients), **RECORD_ENV)
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0
    with sqlite3.connect(ledger) as conn:
        synced = {r[0] for r in conn.execute("SELECT case_id FROM cases WHERE status = 'synced'")}
    assert {own_case, client_case} <= synced

    out = tmp_path / "pack"
    done = snapzen(env, "ledger", "access", "--email", email, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    pack = json.loads((out / "subject.json").read_text())
    company = RECORD_ENV["SNAPZEN_RECORD__CONTROLLER"]
    by_name = {c["controller"]: c for c in pack["controllers"]}
    assert set(by_name) == {company, "Laden GmbH"}
    assert by_name[company]["processor"] is None and own_case in by_name[company]["case_ids"]
    client = by_name["Laden GmbH"]
    assert client["contact"] == "datenschutz@laden.example"
    assert client["processor"] == company and client["case_ids"] == [client_case]
    assert client["answered_on_behalf_of_controller"] is True
    assert client["legal_basis_of_answer"] == "Art. 28(3)(e) GDPR"
    html = (out / "subject.html").read_text()
    assert f"Your personal data held by {company} and Laden GmbH" in html
    assert "Laden GmbH decides how the data of these chats is used (the controller)" in html
    assert "datenschutz@laden.example" in html
    assert f"{company} runs the chat service on Laden GmbH&#39;s website as its processor" in html
    assert "(Art. 28(3)(e) GDPR)" in html and client_case in html

    responses = tmp_path / "responses"
    erased = snapzen(env, "ledger", "erase", "--email", email, "--out", str(responses))
    assert erased.returncode == 0, erased.stdout + erased.stderr
    [text_path] = list(responses.glob("erasure-response-*.txt"))
    text = text_path.read_text()
    data = json.loads(text_path.with_suffix(".json").read_text())
    assert {c["controller"]: c["case_ids"] for c in data["controllers"]} == {
        company: [own_case],
        "Laden GmbH": [client_case],
    }
    assert "Who is responsible for your data:" in text
    assert (
        f"Laden GmbH decides how the data of these chats is used (the controller); you can "
        f"reach them at datenschutz@laden.example. {company} runs the chat service on Laden "
        f"GmbH's website as its processor, and answers this request on Laden GmbH's behalf "
        f"(Art. 28(3)(e) GDPR). (chats {client_case})"
    ) in text
    assert email not in text
