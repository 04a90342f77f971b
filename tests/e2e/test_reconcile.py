"""`snapzen ledger reconcile` with the real CLI against the sandbox: a synced ledger agrees
with Zendesk (exit 0); then a ticket deleted by hand, a `snapengage:` ticket no case of the
ledger made, a second ticket for a chat and two tickets whose external ids were swapped in
Zendesk are each found (exit 3, JSON), a ticket an erasure deleted is not, and
`status` shows the check in its table, its JSON and its metrics."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import cli_env, init_ledger, snapzen, status_json

pytestmark = pytest.mark.e2e

TIMEOUT = 10


def auth(sb: Any) -> tuple[str, str]:
    return (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)


def _synced(ledger: Path) -> dict[str, int]:
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute(
            "SELECT case_id, ticket_id FROM cases WHERE status = 'synced' ORDER BY case_id"
        ).fetchall()
    return {str(case): int(ticket) for case, ticket in rows}


def _import(sb: Any, external_id: str) -> int:
    """A ticket imported into Zendesk by someone else (an agent's script, another tool)."""
    ticket = {
        "external_id": external_id,
        "subject": "chat",
        "requester": {"name": "V", "email": "someone@example.org"},
        "status": "closed",
        "tags": ["snapengage"],
        "comments": [{"body": "hello", "public": False}],
    }
    done = requests.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets",
        json={"ticket": ticket},
        auth=auth(sb),
        timeout=TIMEOUT,
    )
    assert done.status_code == 201, done.text
    return int(done.json()["ticket"]["id"])


def _reconcile(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = snapzen(env, "ledger", "reconcile", "--json")
    assert done.returncode in (0, 3), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["exit_code"] == done.returncode
    return done.returncode, report


def test_reconcile_finds_each_disagreement_and_status_shows_the_check(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=60, seed=41)
    ledger = tmp_path / "snapzen.db"
    env = cli_env(sb, ledger)
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0
    synced = _synced(ledger)
    assert len(synced) >= 5

    code, agree = _reconcile(env)
    assert code == 0 and agree["findings_total"] == 0 and agree["complete"] is True
    assert agree["cases_checked"] == len(synced) and agree["requests"] == 1

    # The person of one chat has it erased: its ticket goes, through snapzen.
    emails = {c["id"]: c.get("requested_by") for c in sb.app.dataset.cases}
    erased = next(c for c in synced if emails.get(c))
    done = snapzen(env, "ledger", "erase", "--email", emails[erased], "--case", erased)
    assert done.returncode == 0, done.stdout + done.stderr
    deleted, duplicated, first, second = [c for c in synced if c != erased][:4]
    # By hand in Zendesk: a ticket deleted, a stranger's snapengage ticket, a second ticket.
    gone = requests.delete(
        f"{sb.zendesk_base_url}/api/v2/tickets/{synced[deleted]}.json",
        auth=auth(sb),
        timeout=TIMEOUT,
    )
    assert gone.status_code == 204
    stranger = _import(sb, "snapengage:not-from-this-ledger")
    again = _import(sb, f"snapengage:{duplicated}")
    # Two tickets whose external ids were swapped in Zendesk (by an agent or a script).
    for case, other in ((first, second), (second, first)):
        edited = requests.put(
            f"{sb.zendesk_base_url}/api/v2/tickets/{synced[case]}.json",
            json={"ticket": {"external_id": f"snapengage:{other}"}},
            auth=auth(sb),
            timeout=TIMEOUT,
        )
        assert edited.status_code == 200, edited.text

    code, report = _reconcile(env)
    assert code == 3
    found = [(f["kind"], f["case_id"], f["ticket_ids"]) for f in report["found"]]
    assert found == [
        ("missing", deleted, [synced[deleted]]),
        ("unknown", "not-from-this-ledger", [stranger]),
        ("duplicated", duplicated, [synced[duplicated], again]),
        ("wrong_case", first, [synced[first], synced[second]]),
        ("wrong_case", second, [synced[second], synced[first]]),
    ]
    assert all(f["suggestion"] for f in report["found"])
    assert report["findings"] == {"missing": 1, "unknown": 1, "duplicated": 1, "wrong_case": 2}

    table = snapzen(env, "ledger", "reconcile")
    assert table.returncode == 3
    assert "findings: missing 1, unknown 1, duplicated 1, wrong case 2" in table.stdout
    assert "not-from-this-ledger" in table.stdout and "init --adopt" in table.stdout

    last = status_json(env)["last_reconcile"]
    assert last["outcome"] == "partial" and last["exit_code"] == 3
    assert last["findings"] == report["findings"]
    shown = snapzen(env, "status")
    assert "last reconcile" in shown.stdout and "wrong case 2" in shown.stdout
    metrics = snapzen(env, "status", "--format", "prometheus").stdout
    assert 'snapzen_reconcile_findings{kind="wrong_case"} 2' in metrics
    assert "snapzen_reconcile_last_run_timestamp_seconds 0" not in metrics
    assert snapzen(env, "ledger", "verify").returncode == 0  # each check is a chained event


def test_a_flag_from_adoption_closes_once_the_duplicate_is_deleted(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=43)
    first = tmp_path / "first.db"
    env = cli_env(sb, first)
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0
    synced = _synced(first)
    case = sorted(synced)[0]
    again = _import(sb, f"snapengage:{case}")  # a second ticket for one chat, by hand

    # The ledger is lost; a new one adopts what Zendesk holds and flags the chat.
    env2 = cli_env(sb, tmp_path / "second.db")
    journal = f"{first}.erasures.jsonl"
    adopted = snapzen(env2, "init", "--adopt", "--erasure-journal", journal)
    assert adopted.returncode == 0, adopted.stderr
    assert snapzen(env2, "status").returncode == 3  # an open flag: a person must look
    listed = json.loads(snapzen(env2, "ledger", "flags", "--json").stdout)
    assert [(f["case_id"], f["kind"], f["ticket_ids"]) for f in listed] == [
        (case, "duplicate_tickets", [synced[case], again])
    ]

    gone = requests.delete(
        f"{sb.zendesk_base_url}/api/v2/tickets/{again}.json", auth=auth(sb), timeout=TIMEOUT
    )
    assert gone.status_code == 204
    # A check begun in the second of the flag leaves it to the next (the flag may name a
    # ticket made after the export passed it): this one runs a few seconds later.
    later = {**env2, "SNAPZEN_CLOCK_OFFSET_SECONDS": "5"}
    code, report = _reconcile(later)
    assert code == 0 and report["findings_total"] == 0
    assert report["resolved"] == [
        {"case_id": case, "kind": "duplicate_tickets", "live_tickets": [synced[case]]}
    ]
    status = snapzen(env2, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert snapzen(env2, "ledger", "flags").stdout.strip() == "no open flags"
    assert snapzen(env2, "ledger", "verify").returncode == 0
