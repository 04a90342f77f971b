"""`snapzen ledger erase --delete-user` end to end: a real sync through the loopback sandbox
creates tickets and a requester profile; the erasure deletes both; a rerun is a no-op."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.sandbox import Sandbox, SandboxConfig
from tests.fakes import LEDGER_KEY, create_ledger

runner = CliRunner()


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=40, seed=7, job_seconds=0.05)) as box:
        for name in [n for n in os.environ if n.startswith("SNAPZEN_")]:
            monkeypatch.delenv(name)
        for name, value in box.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv(
            "SNAPZEN_LEDGER__PATH", str(create_ledger(tmp_path / "ledger.db", LEDGER_KEY))
        )
        monkeypatch.setenv("SNAPZEN_LEDGER__KEY", LEDGER_KEY)
        monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(tmp_path / "no-secrets"))
        monkeypatch.setenv("SNAPZEN_ZENDESK__JOB_POLL_SECONDS", "0.05")
        monkeypatch.setenv("SNAPZEN_HTTP__BACKOFF_BASE_SECONDS", "0.01")
        monkeypatch.setenv("SNAPZEN_LOG__LEVEL", "warning")
        yield box


def live_tickets(sb: Sandbox, email: str) -> list[int]:
    return [
        t["id"]
        for t in sb.tickets()
        if not t["deleted"] and (t.get("requester") or {}).get("email") == email
    ]


def erase_runs(tmp_path: Path) -> list[dict[str, int]]:
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        rows = conn.execute("SELECT details FROM runs WHERE kind = 'erase' ORDER BY rowid")
        return [json.loads(r[0]) for r in rows]


def later(sb: Sandbox) -> None:
    """Move the Zendesk clock past search's index lag: users/search finds the profiles made
    so far (a test's "the chat was synced a while ago")."""
    store, clock = sb.app.store, sb.app.store.clock
    store.clock = lambda: clock() + sb.config.search_index_lag_seconds


def test_sync_then_erase_with_delete_user(sb: Sandbox, tmp_path: Path) -> None:
    synced = runner.invoke(app, ["sync"])
    assert synced.exit_code == 0, synced.output
    later(sb)
    emails = [
        t["requester"]["email"]
        for t in sb.tickets()
        if isinstance(t.get("requester"), dict) and t["requester"].get("email")
    ]
    assert emails, "the data set must contain a synced chat with an email"
    email = emails[0]
    tickets = live_tickets(sb, email)
    [user] = sb.app.store.search_users(email)
    assert user["role"] == "end-user"

    dry = runner.invoke(app, ["ledger", "erase", "--email", email, "--dry-run", "--delete-user"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete Zendesk user {user['id']}" in dry.stdout
    assert live_tickets(sb, email) == tickets

    done = runner.invoke(app, ["ledger", "erase", "--email", email, "--delete-user"])
    assert done.exit_code == 0, done.output
    assert f"Zendesk users deleted: [{user['id']}]" in done.stdout
    assert "no Zendesk end-user profile" not in done.stdout
    assert email.lower() not in done.output.lower()
    assert live_tickets(sb, email) == []
    assert sb.app.store.search_users(email) == []
    assert {"id": user["id"], "purged": True} in sb.app.store.inspect_users()
    [details] = erase_runs(tmp_path)
    assert details["erased"] == len(tickets) and details["zendesk_users_deleted"] == 1

    again = runner.invoke(app, ["ledger", "erase", "--email", email, "--delete-user"])
    assert again.exit_code == 0, again.output
    assert "deleted: 0" in again.stdout and len(erase_runs(tmp_path)) == 1
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    assert email.lower().encode() not in raw.lower()


def test_agent_with_that_email_is_refused(sb: Sandbox, tmp_path: Path) -> None:
    assert runner.invoke(app, ["sync"]).exit_code == 0
    # An agent account that has been there all along (search has long indexed it).
    agent_id = sb.app.store.add_user(
        "staff@example.org", name="Staff", role="agent", created=-math.inf
    )
    result = runner.invoke(
        app, ["ledger", "erase", "--email", "staff@example.org", "--delete-user"]
    )
    assert result.exit_code == 3, result.output
    assert f"Zendesk user {agent_id} is not an end-user" in result.stderr
    assert sb.app.store.search_users("staff@example.org")[0]["id"] == agent_id
    assert erase_runs(tmp_path)[-1]["zendesk_users_not_deleted"] == 1


def test_a_profile_synced_minutes_ago_is_deleted_too(sb: Sandbox, tmp_path: Path) -> None:
    assert runner.invoke(app, ["sync"]).exit_code == 0
    email = next(
        t["requester"]["email"]
        for t in sb.tickets()
        if isinstance(t.get("requester"), dict) and t["requester"].get("email")
    )
    [user] = sb.app.store.search_users(email)  # the account has it; users/search not yet
    dry = runner.invoke(app, ["ledger", "erase", "--email", email, "--dry-run", "--delete-user"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete Zendesk user {user['id']}" in dry.stdout
    assert "no Zendesk end-user profile" not in dry.stdout
    done = runner.invoke(app, ["ledger", "erase", "--email", email, "--delete-user"])
    assert done.exit_code == 0, done.output
    assert live_tickets(sb, email) == []
    assert {"id": user["id"], "purged": True} in sb.app.store.inspect_users()
    assert f"Zendesk users deleted: [{user['id']}]" in done.stdout
    assert "no Zendesk end-user profile" not in done.stdout
