"""Issue 27, item 1 end to end: the real CLI against the sandbox. The access pack is refused
while the Art. 15 information is missing; it carries SnapEngage's own copy of a withheld
chat; a Zendesk ticket snapzen did not create is listed for review, not put in the pack,
until named with --include-ticket."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape  # the escaping the pack's Jinja2 template applies

from snapzen.ledger.evidence.chain import subject_ref
from tests.e2e.conftest import (
    LEDGER_KEY,
    chain_problems,
    cli_env,
    init_ledger,
    let_search_index,
    snapzen,
)
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e
# The ledger's codes, which subject.json keeps and subject.html must not show.
LEDGER_CODES = re.compile(
    r"\b(art45|art46|art49_1a|art49_1b|not_restricted|synced|type_[a-z]+_not_synced|"
    r"consent_refused|no_consent_recorded|consent_value_not_accepted|seq|[0-9a-f]{64})\b"
)


def _person(sb: Any, ledger: Path, status: str) -> tuple[str, str]:
    """(email, case id) of a visitor with a chat in ``status``, matched through the ledger."""
    emails = {c["id"]: c.get("requested_by") for c in sb.app.dataset.cases}
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute(
            "SELECT case_id, subject_ref FROM cases WHERE status = ? AND subject_ref IS NOT "
            "NULL ORDER BY case_id",
            (status,),
        ).fetchall()
    for case_id, ref in rows:
        email = emails.get(case_id)
        if email and subject_ref(LEDGER_KEY.encode(), email) == ref:
            return str(email), str(case_id)
    raise AssertionError(f"no {status} chat with an email in this data set")


def _requests(env: dict[str, str]) -> list[dict[str, Any]]:
    done = snapzen(env, "ledger", "requests", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_refused_while_the_record_is_empty_then_carries_snapengages_copy_of_a_withheld_chat(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=60, seed=11)
    ledger = tmp_path / "ledger.db"
    bare = cli_env(sb, ledger)  # no [record] settings
    init_ledger(bare)
    assert snapzen(bare, "sync").returncode == 0
    email, case_id = _person(sb, ledger, "withheld")

    out = tmp_path / "pack"
    refused = snapzen(bare, "ledger", "access", "--email", email, "--out", str(out))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    for field in ("record.controller", "record.contact", "record.lawful_basis"):
        assert field in refused.stderr
    assert email not in refused.stdout + refused.stderr
    assert not out.exists() and _requests(bare) == []  # nothing written, nothing "provided"

    env = {**bare, **RECORD_ENV}
    done = snapzen(env, "ledger", "access", "--email", email, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SnapEngage's own copy included" in done.stdout
    pack = json.loads((out / "subject.json").read_text())
    chat = next(c for c in pack["chats"] if c["case_id"] == case_id)
    assert chat["status"] == "withheld" and chat["snapengage_copy_state"] == "included"
    served = next(c for c in sb.app.dataset.cases if c["id"] == case_id)
    # Every field the Logs API returns about the person, exactly as it returned it.
    assert chat["snapengage_copy"] == json.loads(json.dumps(served))
    html = (out / "subject.html").read_text()
    assert served["ip_address"] in html and served["browser"] in html
    said = [line for t in served["transcripts"] for line in str(t["message"]).splitlines()]
    assert said and all(str(escape(line)) in html for line in said)
    assert chat["reason"] not in html  # the code is in the JSON only
    assert LEDGER_CODES.findall(html) == []
    assert "SnapEngage" in pack["information"]["recipients"]
    [request] = _requests(env)
    assert request["kind"] == "access" and request["status"] == "closed"
    assert chain_problems(ledger) == []


def test_a_ticket_snapzen_did_not_create_is_listed_then_included_after_review(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=5)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, **RECORD_ENV)
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0
    email, _case = _person(sb, ledger, "synced")
    # An email ticket of another channel naming the same person, with a third party in it.
    foreign = sb.app.store.create_ticket(
        {
            "subject": "Invoice question",
            "comment": {"body": "From Bob Other, cc the visitor: invoice 17 is wrong"},
            "requester": {"email": email, "name": "Someone"},
            "via": {"channel": "email"},
        },
        False,
        None,
    ).data["id"]
    let_search_index(sb)  # sent a while ago (minutes ago: see test_search_lag.py)

    out = tmp_path / "pack"
    done = snapzen(env, "ledger", "access", "--email", email, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"--include-ticket {foreign}" in done.stderr and "NOT in the pack" in done.stderr
    pack = json.loads((out / "subject.json").read_text())
    assert foreign not in [t["ticket_id"] for t in pack["tickets"]]
    written = (out / "subject.json").read_text() + (out / "subject.html").read_text()
    assert "Bob Other" not in written

    reviewed = tmp_path / "reviewed"
    again = snapzen(env, "ledger", "access", "--email", email, "--out", str(reviewed),
                    "--include-ticket", str(foreign))  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "NOT in the pack" not in again.stderr
    tickets = {t["ticket_id"]: t for t in json.loads((reviewed / "subject.json").read_text())
               ["tickets"]}  # fmt: skip
    assert tickets[foreign]["created_by_snapzen"] is False and tickets[foreign]["reviewed"]
    assert "Bob Other" in (reviewed / "subject.html").read_text()

    stray = snapzen(env, "ledger", "access", "--email", email, "--out", str(tmp_path / "x"),
                    "--include-ticket", "999999")  # fmt: skip
    assert stray.returncode == 2 and "--include-ticket 999999" in stray.stderr
    assert len(_requests(env)) == 2 and chain_problems(ledger) == []
