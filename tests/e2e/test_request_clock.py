"""Issue 27 item 3 with the real CLI against the sandbox: the Art. 12(3) request clock.

A request is received on its own (`ledger requests open`), paused while the person proves who
they are, extended once, answered; the deadline moves with each, a request past it is flagged
in the listing, `status` (exit 3) and the metrics, one answered late says so for ever, and all
of it survives restoring an older backup."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.rights.requests import add_months
from snapzen.support.clock import now as utcnow
from tests.e2e.conftest import cli_env, init_ledger, snapzen, verify_cli
from tests.e2e.people import requests_json, synced_env, synced_person
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e


def _ok(env: dict[str, str], *args: str) -> str:
    done = snapzen(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _open(env: dict[str, str], *args: str) -> str:
    """Open a request; its id (the first word of the line printed)."""
    return _ok(env, "ledger", "requests", "open", *args).split()[0]


def _one(env: dict[str, str], request_id: str) -> dict[str, Any]:
    (found,) = [r for r in requests_json(env) if r["request_id"] == request_id]
    return found


def _first_chat(ledger: Path, email_ref_case: str) -> date:
    with sqlite3.connect(ledger) as conn:
        (day,) = conn.execute(
            "SELECT MIN(day) FROM cases WHERE subject_ref = "
            "(SELECT subject_ref FROM cases WHERE case_id = ?)",
            (email_ref_case,),
        ).fetchone()
    return date.fromisoformat(day)


def test_open_pause_resume_extend_close_and_erase_answering_an_open_request(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=11)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, **RECORD_ENV)  # access needs [record]
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0
    email, case, _tickets = synced_person(sb, ledger)
    today = utcnow().date()
    first = _first_chat(ledger, case)

    opening = ("ledger", "requests", "open", "--type", "access", "--email", email, "--received")
    future = snapzen(env, *opening, (today + timedelta(days=1)).isoformat())
    assert future.returncode == 2 and "is in the future" in future.stderr, future.stderr
    tomorrow = (today + timedelta(days=1)).isoformat()
    erase_ahead = snapzen(env, "ledger", "erase", "--email", email, "--received", tomorrow)
    assert erase_ahead.returncode == 2 and "is in the future" in erase_ahead.stderr
    early = snapzen(env, *opening, (first - timedelta(days=1)).isoformat())
    assert early.returncode == 2, early.stdout + early.stderr
    assert f"before this person's first chat in the ledger ({first})" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1 and email not in early.stderr
    assert requests_json(env) == []  # nothing recorded by a refusal

    rid = _open(env, "--type", "rectification", "--received", today.isoformat(), "--email", email)
    opened = _one(env, rid)
    assert (opened["status"], opened["deadline"]) == ("open", add_months(today, 1).isoformat())
    assert opened["subject_ref"] and email not in json.dumps(opened)
    _ok(env, "ledger", "requests", "pause", rid, "--reason", "identity")
    assert _one(env, rid)["status"] == "paused"
    assert snapzen(env, "ledger", "requests", "pause", rid, "--reason", "identity").returncode == 2
    _ok(env, "ledger", "requests", "resume", rid)  # the same day: no day paused
    _ok(env, "ledger", "requests", "extend", rid, "--reason", "many tickets to review")
    again = snapzen(env, "ledger", "requests", "extend", rid, "--reason", "more")
    assert again.returncode == 2 and "already extended" in again.stderr, again.stderr
    extended = _one(env, rid)
    assert extended["deadline"] == add_months(today, 3).isoformat()
    assert extended["extended_months"] == 2 and extended["overdue"] is False
    shown = _ok(env, "ledger", "requests")
    assert rid in shown and "extended +2 month(s)" in shown

    _ok(env, "ledger", "requests", "close", rid, "--outcome", "rectified")
    closed = _one(env, rid)
    assert (closed["status"], closed["outcome"], closed["closed_late"]) == (
        "closed", "rectified", False,
    )  # fmt: skip
    assert [e["event"] for e in closed["events"]] == [
        "request", "request_paused", "request_resumed", "request_extended", "request",
    ]  # fmt: skip
    refused = snapzen(env, "ledger", "requests", "resume", rid)
    assert refused.returncode == 2 and "closed on" in refused.stderr

    # `ledger access --request` answers the open request: its id, its received date.
    aid = _open(env, "--type", "access", "--received", first.isoformat(), "--case", case)
    pack = tmp_path / "pack"
    given = snapzen(env, "ledger", "access", "--email", email, "--out", str(pack), "--request", aid)
    assert given.returncode == 0, given.stdout + given.stderr
    assert f"access pack {aid}:" in given.stdout
    provided = _one(env, aid)
    assert (provided["status"], provided["outcome"]) == ("closed", "provided")
    assert provided["received_on"] == first.isoformat() and provided["subject_ref"]
    wrong = snapzen(env, "ledger", "erase", "--email", email, "--request", aid)
    assert wrong.returncode == 2 and f"request {aid} is closed" in wrong.stderr

    # `ledger erase --request` answers the open request instead of recording a new one.
    eid = _open(env, "--type", "erasure", "--received", today.isoformat(), "--email", email)
    erased = snapzen(env, "ledger", "erase", "--email", email, "--request", eid)
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert f"request {eid} (erasure) journalled" in erased.stdout
    answered = _one(env, eid)
    assert (answered["status"], answered["outcome"]) == ("closed", "erased")
    assert len(requests_json(env)) == 3
    twice = snapzen(env, "ledger", "erase", "--email", email, "--request", eid)
    assert twice.returncode == 2 and f"request {eid} is closed" in twice.stderr
    assert verify_cli(env).returncode == 0
    shutil.rmtree(pack)  # the pack holds personal data


def test_a_request_received_long_ago_is_overdue_in_status_and_metrics_then_closed_late(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=10, seed=12)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    assert snapzen(env, "status").returncode == 0  # healthy before the request

    received = utcnow().date() - timedelta(days=70)
    rid = _open(env, "--type", "objection", "--received", received.isoformat())
    listed = _one(env, rid)
    assert listed["overdue"] is True and listed["deadline"] == add_months(received, 1).isoformat()
    assert "OVERDUE" in _ok(env, "ledger", "requests")
    status = snapzen(env, "status", "--json")
    assert status.returncode == 3, status.stderr
    assert json.loads(status.stdout)["requests_overdue"] == [rid]
    table = snapzen(env, "status")
    assert table.returncode == 3 and "1 data-subject request(s) past their deadline" in table.stdout
    metrics = snapzen(env, "status", "--format", "prometheus")
    assert "\nsnapzen_requests_overdue 1\n" in metrics.stdout, metrics.stdout
    late_extension = snapzen(env, "ledger", "requests", "extend", rid, "--reason", "late")
    assert late_extension.returncode == 2 and "has passed" in late_extension.stderr

    _ok(env, "ledger", "requests", "close", rid, "--outcome", "objection_upheld")
    closed = _one(env, rid)
    assert closed["closed_late"] is True and closed["overdue"] is False
    assert "CLOSED LATE" in _ok(env, "ledger", "requests")
    assert snapzen(env, "status").returncode == 0  # answered: nothing overdue any more
    assert "\nsnapzen_requests_overdue 0\n" in _ok(env, "status", "--format", "prometheus")


def test_request_events_come_back_after_restoring_an_older_backup(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=10, seed=13)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    backup = tmp_path / "backup.db"
    _ok(env, "ledger", "backup", str(backup))
    received = utcnow().date() - timedelta(days=3)
    rid = _open(env, "--type", "restriction", "--received", received.isoformat())
    _ok(env, "ledger", "requests", "pause", rid, "--reason", "clarification")
    _ok(env, "ledger", "requests", "resume", rid)
    _ok(env, "ledger", "requests", "extend", rid, "--reason", "complex", "--months", "1")
    done = _ok(env, "ledger", "requests", "close", rid, "--outcome", "restricted")
    assert rid in done
    before = _one(env, rid)

    restored = _ok(env, "ledger", "restore", str(backup))
    assert "5 request event(s) restored" in restored, restored  # open, pause, resume, ...
    after = _one(env, rid)
    keep = ("kind", "received_on", "deadline", "status", "outcome", "closed_late",
            "extended_months")  # fmt: skip
    assert {k: after[k] for k in keep} == {k: before[k] for k in keep}
    assert [(e["event"], e["at"]) for e in after["events"]] == [
        (e["event"], e["at"]) for e in before["events"]
    ]
    assert after["deadline"] == add_months(received, 2).isoformat()
    assert verify_cli(env).returncode == 0
