"""Issue 27 item 2, the Art. 19 record and what remains, end to end with the real CLI against
the sandbox: a recipient of kind other (`[transfer] recipients`, system "other") is listed
"to be told" with what to tell it; `ledger notices` shows every notice still owed until
`ledger notices done ID --when DATE` records it, and a restore keeps both; the erasure
response names each registered backup and journal copy that still holds the person, by path
and date, instead of "backups"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import snapzen, verify_cli
from tests.e2e.people import synced_env, synced_person

pytestmark = pytest.mark.e2e

RECIPIENTS = [
    {"name": "Zendesk, Inc.", "country": "US", "system": "zendesk", "basis": "derogation"},
    {"name": "Acme CRM GmbH", "country": "DE", "system": "other"},
]


def _open(env: dict[str, str]) -> list[dict[str, Any]]:
    done = snapzen(env, "ledger", "notices", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_notices_owed_stay_listed_until_done_and_survive_a_restore(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger, SNAPZEN_TRANSFER__RECIPIENTS=json.dumps(RECIPIENTS))
    email, case_id, _tickets = synced_person(sb, ledger)
    backup = tmp_path / "backups" / "before.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    key = tmp_path / "k.pem"
    assert snapzen(env, "ledger", "keygen", str(key), str(tmp_path / "k.pub")).returncode == 0
    point = tmp_path / "points" / "head.json"
    # Its journal copy two seconds earlier by snapzen's clock: stamps carry seconds, and a copy
    # made in the second of the person's first request may hold it (commands.copies.holding).
    earlier = {**env, "SNAPZEN_CLOCK_OFFSET_SECONDS": "-2"}
    made = snapzen(earlier, "ledger", "checkpoint", str(point), "--signing-key", str(key))
    assert made.returncode == 0, made.stderr
    assert _open(env) == []

    out = tmp_path / "out"
    erased = snapzen(env, "ledger", "erase", "--email", email, "--out", str(out))
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert "`snapzen ledger notices done NOTICE --when DATE`" in erased.stdout
    [text_path] = list(out.glob("erasure-response-*.txt"))
    text = text_path.read_text()
    data = json.loads(text_path.with_suffix(".json").read_text())
    told = {n["recipient"]: n for n in data["art19_recipients"]}
    assert told["Acme CRM GmbH"]["status"] == "to_notify"
    assert case_id in told["Acme CRM GmbH"]["how"]
    assert "- Acme CRM GmbH: to be told (owed since" in text
    assert f"ask Acme CRM GmbH to erase what it holds of chats {case_id}" in text
    # The backup made after the person's chat holds them: named by path and date.
    today = datetime.now(UTC).date().isoformat()
    where = {r["where"]: r for r in data["remains"]}
    assert where[str(backup.resolve())]["what"] == "backup"
    assert where[str(backup.resolve())]["made_on"] == today
    assert f"{backup.resolve()}: backup, until we delete it" in text
    assert "backups of snapzen's database" not in where  # not generically any more
    # The journal copy was made before the person ever asked: it does not hold them.
    assert not any("erasures.jsonl" in w for w in where)

    owed = {n["recipient"]: n for n in _open(env)}
    assert set(owed) == {"SnapEngage", "Acme CRM GmbH"}
    acme = owed["Acme CRM GmbH"]["notice_id"]
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    future = snapzen(env, "ledger", "notices", "done", acme, "--when", tomorrow)
    assert future.returncode == 2 and "in the future" in future.stderr
    done = snapzen(env, "ledger", "notices", "done", acme, "--when", today)
    assert done.returncode == 0, done.stderr
    assert f"notice {acme}: Acme CRM GmbH told on {today}" in done.stdout
    assert [n["recipient"] for n in _open(env)] == ["SnapEngage"]
    again = snapzen(env, "ledger", "notices", "done", acme, "--when", today)
    assert again.returncode == 2 and "already recorded as done" in again.stderr
    unknown = snapzen(env, "ledger", "notices", "done", "ntc-000000000000", "--when", today)
    assert unknown.returncode == 2 and "no Art. 19 notice ntc-000000000000" in unknown.stderr

    # A backup from before the erasure is restored: the journal brings the notices back.
    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert [n["recipient"] for n in _open(env)] == ["SnapEngage"]
    assert verify_cli(env).returncode == 0
