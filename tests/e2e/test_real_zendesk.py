"""`snapzen` against a sandbox as strict as a real account: requesters without an email are
refused, and a wrong token is noticed even when nothing is due."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli_env, init_ledger, snapzen, status_json

pytestmark = pytest.mark.e2e


def test_strict_account_refuses_name_only_requesters_until_the_setting_is_given(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=60, seed=5, strict_requester=True)
    no_email = [r for r in sb.truth() if not r.get("email_valid")]
    assert no_email, "the data set must contain chats without a valid email"
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    init_ledger(env)
    first = snapzen(env, "sync")
    assert first.returncode == 3, first.stdout + first.stderr
    failed = status_json(env)["failed"]
    assert failed and all("zendesk.anonymous_requester_id" in f["error"] for f in failed)

    # The setting names the account's own user (found through users/me) for such chats.
    shared = str(sb.app.store.api_user_id)
    env = cli_env(sb, ledger, SNAPZEN_ZENDESK__ANONYMOUS_REQUESTER_ID=shared)
    retried = snapzen(env, "retry", "--all-failed")
    assert retried.returncode in (0, 3), retried.stdout + retried.stderr
    second = snapzen(env, "sync")
    assert second.returncode == 0, second.stdout + second.stderr
    assert status_json(env)["failed"] == []
    by_requester = [t for t in sb.tickets() if t.get("requester_id") == int(shared)]
    assert by_requester  # imported under the shared user


def test_wrong_token_fails_the_pass_when_nothing_is_due(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=0)
    ledger = tmp_path / "ledger.db"
    init_ledger(cli_env(sb, ledger))
    good = snapzen(cli_env(sb, ledger), "sync")
    assert good.returncode == 0, good.stdout + good.stderr
    env = cli_env(sb, ledger, SNAPZEN_ZENDESK__API_TOKEN="expired-token-0000")
    bad = snapzen(env, "sync")
    assert bad.returncode == 1
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert any("AuthError" in line and "users/me" in line for line in lines)
    assert "expired-token-0000" not in bad.stdout + bad.stderr
    check = snapzen(env, "status", "--check")
    assert check.returncode == 1 and "unhealthy" in check.stdout
