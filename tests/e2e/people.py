"""Shared steps of the rights tests: a ledger synced from the sandbox, the person behind one of
its chats, and what the ledger recorded about them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from snapzen.ledger.evidence.chain import subject_ref
from snapzen.sandbox import Sandbox
from tests.e2e.conftest import LEDGER_KEY, cli_env, init_ledger, snapzen


def synced_env(sb: Sandbox, ledger: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment for ``ledger``, after init and one successful sync."""
    env = cli_env(sb, ledger, **extra)
    init_ledger(env)
    done = snapzen(env, "sync")
    assert done.returncode == 0, done.stderr
    return env


def synced_person(sb: Any, ledger: Path) -> tuple[str, str, list[int]]:
    """(email, case id, ticket ids) of a visitor with a ticket, found through the ledger."""
    emails = {c["id"]: c.get("requested_by") for c in sb.app.dataset.cases}
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute(
            "SELECT case_id, subject_ref, ticket_id FROM cases WHERE status = 'synced' "
            "AND subject_ref IS NOT NULL AND ticket_id IS NOT NULL ORDER BY case_id"
        ).fetchall()
        for case_id, ref, _ticket in rows:
            email = emails.get(case_id)
            if email and subject_ref(LEDGER_KEY.encode(), email) == ref:
                tickets = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT ticket_id FROM cases WHERE subject_ref = ? AND ticket_id "
                        "IS NOT NULL",
                        (ref,),
                    )
                ]
                return email, case_id, tickets
    raise AssertionError("no synced visitor with an email")


def ledger_events(ledger: Path, event: str) -> list[dict[str, Any]]:
    """Every ledger row of one event, as dicts."""
    with sqlite3.connect(ledger) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM events WHERE event = ?", (event,))]


def requests_json(env: dict[str, str]) -> list[dict[str, Any]]:
    """`snapzen ledger requests --json`."""
    done = snapzen(env, "ledger", "requests", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found
