"""Issue 27 items 2 and 5 end to end, with the real CLI against the sandbox: an erasure that
accounts for what remains (response file, Art. 19 record, a Zendesk profile kept while a
ticket snapzen did not create names the person), and a retention sweep that purges the
deleted bin and deletes the profiles no ticket names any more."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli_env, init_ledger, let_search_index, snapzen, verify_cli
from tests.e2e.people import ledger_events, synced_env, synced_person

pytestmark = pytest.mark.e2e


def _live_user(sb: Any, email: str) -> int | None:
    found = sb.app.store.search_users(email)
    return int(found[0]["id"]) if found else None


def _purged_users(sb: Any) -> set[int]:
    return {int(u["id"]) for u in sb.app.store.inspect_users() if u.get("purged")}


def _response(out: Path) -> tuple[str, dict[str, Any], Path]:
    [text_path] = list(out.glob("erasure-response-*.txt"))
    json_path = text_path.with_suffix(".json")
    for path in (text_path, json_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return text_path.read_text(), json.loads(json_path.read_text()), text_path


def test_erase_keeps_a_profile_another_ticket_names_and_says_what_remains(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    email, case_id, tickets = synced_person(sb, ledger)
    user_id = _live_user(sb, email)
    assert user_id is not None
    # An email to support, not created by snapzen, names the person.
    foreign = sb.app.store.add_email_ticket(email, "Invoice question")
    let_search_index(sb)  # a while ago: users/search has indexed the profile
    out = tmp_path / "out"

    done = snapzen(env, "ledger", "erase", "--email", email, "--delete-user", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Zendesk user {user_id} NOT deleted: ticket(s) [{foreign}]" in done.stderr
    state = {t["id"]: t for t in sb.tickets()}
    assert set(tickets) <= sb.app.store.purged and not state[foreign]["deleted"]
    assert _live_user(sb, email) == user_id  # kept: the foreign ticket still names them

    text, data, path = _response(out)
    assert str(path) in done.stdout
    assert email not in text and email not in json.dumps(data)
    remains = {(r["where"], r["id"]): r for r in data["remains"]}
    assert ("Zendesk", foreign) in remains
    assert f"ticket not created by snapzen {foreign}" in text
    millis = next(c["created_at_milliseconds"] for c in sb.app.dataset.cases if c["id"] == case_id)
    started = datetime.fromtimestamp(millis / 1000, UTC).date()
    snapengage = remains[("SnapEngage", case_id)]
    assert snapengage["until"] == (started + timedelta(days=60)).isoformat()
    assert f"chat {case_id}, until {snapengage['until']}" in text
    assert any(r["what"] == "backup" for r in data["remains"])
    assert data["deleted"]["zendesk_tickets"] == sorted(tickets)
    assert data["zendesk_profile"] == "kept_tickets_remain"
    # Art. 19: Zendesk told (snapzen deleted there), SnapEngage to be told; both chained.
    today = datetime.now(UTC).date().isoformat()
    told = {(n["recipient"], n["status"], n["on"]) for n in data["art19_recipients"]}
    assert told == {("Zendesk", "notified", today), ("SnapEngage", "to_notify", today)}
    events = ledger_events(ledger, "recipient_notice")
    assert {e["recipient"] for e in events} == {"Zendesk", "SnapEngage"}
    assert {n["ledger_seq"] for n in data["art19_recipients"]} == {e["seq"] for e in events}
    assert verify_cli(env).returncode == 0


def test_erase_deletes_the_profile_when_no_ticket_names_them(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    email, _case, tickets = synced_person(sb, ledger)
    user_id = _live_user(sb, email)
    assert user_id is not None
    # Someone else's email ticket that CCs the person: it names them too.
    other = sb.app.store.add_email_ticket("colleague@example.net", "Hi", cc_emails=(email,))
    let_search_index(sb)  # a while ago: users/search has indexed the profile
    out = tmp_path / "out"
    kept = snapzen(env, "ledger", "erase", "--email", email, "--delete-user", "--out", str(out))
    assert kept.returncode == 0, kept.stderr
    assert f"ticket(s) [{other}]" in kept.stderr and _live_user(sb, email) == user_id

    # The other ticket is deleted by hand: the next erasure deletes the profile.
    sb.app.store.tickets[other].deleted_at = "2026-01-01T00:00:00Z"
    again = snapzen(env, "ledger", "erase", "--email", email, "--delete-user", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert f"Zendesk users deleted: [{user_id}]" in again.stdout
    assert _live_user(sb, email) is None and user_id in _purged_users(sb)
    newest = max(out.glob("erasure-response-*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert json.loads(newest.read_text())["zendesk_profile"] == "deleted"
    assert set(tickets) <= sb.app.store.purged


def test_sweep_purges_the_bin_and_deletes_ticketless_profiles_dry_run_first(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Chats up to ~4 years old, all still held by SnapEngage's (long) window here.
    sb = make_sandbox(chats=60, seed=11, days=1500, retention_days=2000, widgets=1)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, SNAPZEN_SNAPENGAGE__RETENTION_DAYS="2000")
    init_ledger(env)
    assert snapzen(env, "sync").returncode == 0, "sync"
    store = sb.app.store
    users_before = store.inspect_users()

    dry = snapzen(env, "retention", "sweep", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    due = {d["ticket_id"] for d in plan["planned"]}
    would = set(plan["users_planned"])
    assert due and len(would) >= 2 and plan["purge"] is True
    # One of them gets an email ticket (another channel): kept from now on.
    emails = {u["id"]: u["email"] for u in users_before if u.get("email")}
    keep_id = min(would & set(emails))
    keep_email = emails[keep_id]
    foreign = store.add_email_ticket(keep_email, "Still here")

    text = snapzen(env, "retention", "sweep", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert f"would purge {len(due)} from Zendesk's deleted-tickets bin" in text.stdout
    for user_id in would - {keep_id}:
        assert f"would delete Zendesk user {user_id}" in text.stdout
    assert f"would delete Zendesk user {keep_id} " not in text.stdout
    assert "Zendesk user(s) kept" in text.stdout
    # The dry runs changed nothing.
    assert not any(t["deleted"] for t in sb.tickets()) and store.purged == set()
    assert _purged_users(sb) == set()

    done = snapzen(env, "retention", "sweep", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["purged"] == len(due) and result["users_deleted"] == len(would) - 1
    assert due <= store.purged  # gone from the deleted bin too, not waiting 30 days
    assert _purged_users(sb) == would - {keep_id}
    assert _live_user(sb, keep_email) == keep_id
    assert not next(t for t in sb.tickets() if t["id"] == foreign)["deleted"]
    assert verify_cli(env).returncode == 0


def test_a_ticket_the_person_only_submitted_keeps_their_profile_in_erasure(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """Item 2: any ticket naming the person stops `--delete-user`, one they only submitted
    for someone else included (another channel: an email forwarded on a colleague's behalf)."""
    sb = make_sandbox(chats=30, seed=5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    email, _case, tickets = synced_person(sb, ledger)
    user_id = _live_user(sb, email)
    assert user_id is not None
    filed = sb.app.store.add_email_ticket(
        "colleague@example.net", "Filed for a colleague", submitter_email=email
    )
    let_search_index(sb)  # filed a while ago (minutes ago: see test_search_lag.py)
    out = tmp_path / "out"
    kept = snapzen(env, "ledger", "erase", "--email", email, "--delete-user", "--out", str(out))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"Zendesk user {user_id} NOT deleted: ticket(s) [{filed}]" in kept.stderr
    assert _live_user(sb, email) == user_id and set(tickets) <= sb.app.store.purged
    text, data, _path = _response(out)
    assert data["zendesk_profile"] == "kept_tickets_remain"
    assert ("Zendesk", filed) in {(r["where"], r["id"]) for r in data["remains"]}
    assert f"ticket not created by snapzen {filed}" in text
