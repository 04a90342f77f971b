"""Data-subject rights end to end, with the real CLI against the sandbox: access packs
(archived tickets included), the request journal, legal holds, and an erasure that survives
restoring a backup taken before it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.rights.requests import add_months
from tests.e2e.conftest import (
    LEDGER_KEY,
    chain_problems,
    let_search_index,
    skip_zendesk_clock,
    snapzen,
    verify_cli,
)
from tests.e2e.people import ledger_events, requests_json, synced_env, synced_person
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e


def test_access_pack_includes_archived_tickets_and_is_journalled(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=5, archive_after_seconds=0.5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger, **RECORD_ENV)
    email, _case, tickets = synced_person(sb, ledger)
    skip_zendesk_clock(sb, 0.7)  # the sandbox archives solved tickets after 0.5 s
    archived = {t["id"] for t in sb.tickets() if t["archived"]}
    assert set(tickets) <= archived, "the person's tickets must be archived for this test"

    out = tmp_path / "pack"
    done = snapzen(env, "ledger", "access", "--email", email, "--out", str(out),
                   "--received", "2026-01-31")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert email not in done.stdout + done.stderr
    pack = json.loads((out / "subject.json").read_text())
    by_id = {t["ticket_id"]: t for t in pack["tickets"]}
    assert set(tickets) <= set(by_id)
    for ticket_id in tickets:
        entry = by_id[ticket_id]
        assert entry["state"] == "present"
        zendesk = next(t for t in sb.tickets() if t["id"] == ticket_id)
        assert [c["body"] for c in entry["transcript"]] == [c["body"] for c in zendesk["comments"]]
    assert pack["information"]["recipients"][0] == "Zendesk, Inc."
    assert any(row["event"] == "transfer" for row in pack["ledger"]) or pack["chats"]
    html = (out / "subject.html").read_text()
    assert "<script" not in html.lower() and "Your personal data" in html

    provided = ledger_events(ledger, "access_provided")
    assert len(provided) == 1
    details = json.loads(provided[0]["details"])
    assert details["sha256_json"] == hashlib.sha256((out / "subject.json").read_bytes()).hexdigest()
    # The bytes as written: a transcript line may hold "\r\n", which read_text() turns into "\n".
    assert details["sha256_html"] == hashlib.sha256((out / "subject.html").read_bytes()).hexdigest()
    [request] = requests_json(env)
    assert request["kind"] == "access" and request["status"] == "closed"
    assert request["received_on"] == "2026-01-31" and request["deadline"] == "2026-02-28"
    assert chain_problems(ledger) == []


def test_erase_by_reason_nothing_found_and_held_tickets(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=40, seed=6, archive_after_seconds=0.3)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    skip_zendesk_clock(sb, 0.5)  # past the archiving age

    # Nobody with this address: still journalled, with its reason and deadline.
    nobody = snapzen(env, "ledger", "erase", "--email", "nobody@example.org",
                     "--reason", "objection")  # fmt: skip
    assert nobody.returncode == 0, nobody.stderr
    [objection] = requests_json(env)
    assert objection["kind"] == "objection" and objection["outcome"] == "nothing_found"
    today = datetime.now(UTC).date()
    assert objection["deadline"] == add_months(today, 1).isoformat()  # Art. 12(3)

    # A held ticket survives the erasure; the rest of the person's (archived) tickets go.
    email, _case, tickets = synced_person(sb, ledger)
    held = tickets[0]
    added = snapzen(env, "ledger", "hold", "add", "--ticket", str(held), "--reason", "claim 7")
    assert added.returncode == 0, added.stderr
    listed = json.loads(snapzen(env, "ledger", "hold", "list", "--json").stdout)
    assert [h["target"] for h in listed] == [f"ticket:{held}"]
    done = snapzen(env, "ledger", "erase", "--email", email, "--reason", "consent_withdrawn")
    assert done.returncode == 0, done.stdout + done.stderr
    live = {t["id"]: t for t in sb.tickets()}
    assert not live[held]["deleted"]
    assert all(live[t]["deleted"] for t in tickets if t != held)
    requests = requests_json(env)
    withdrawal = next(r for r in requests if r["kind"] == "withdrawal")
    assert withdrawal["outcome"] == "erased_partly_held"
    assert withdrawal["details"]["tickets_held"] == 1
    assert withdrawal["details"]["reason"] == "consent_withdrawn"
    erased = ledger_events(ledger, "erased")
    assert len(erased) == len(tickets) - 1
    assert {json.loads(e["details"])["reason"] for e in erased} <= {"consent_withdrawn"}

    # Lifted, the next erasure deletes it and the chain records both hold events.
    assert snapzen(env, "ledger", "hold", "remove", "--ticket", str(held),
                   "--reason", "settled").returncode == 0  # fmt: skip
    again = snapzen(env, "ledger", "erase", "--email", email)
    assert again.returncode == 0, again.stderr
    assert next(t for t in sb.tickets() if t["id"] == held)["deleted"]
    last = [
        json.loads(e["details"]) for e in ledger_events(ledger, "erased") if e["ticket_id"] == held
    ]
    assert [d["reason"] for d in last] == ["art17_request"]
    assert (
        len(ledger_events(ledger, "hold_added")) == len(ledger_events(ledger, "hold_removed")) == 1
    )
    assert verify_cli(env).returncode == 0


def test_erasure_survives_restoring_an_older_backup(make_sandbox: Any, tmp_path: Path) -> None:
    """backup → erase → restore → reapply-erasures → sync: nothing of the person returns."""
    sb = make_sandbox(chats=40, seed=8)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    email, _case, tickets = synced_person(sb, ledger)
    ref = subject_ref(LEDGER_KEY.encode(), email)
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0

    done = snapzen(env, "ledger", "erase", "--email", email)
    assert done.returncode == 0, done.stdout + done.stderr
    journal = Path(str(ledger) + ".erasures.jsonl")
    assert journal.exists() and ref in journal.read_text() and email not in journal.read_text()
    checkpoint = tmp_path / "off-machine" / "cp.json"
    key, public = tmp_path / "operator.pem", tmp_path / "operator.pub.pem"
    assert snapzen(env, "ledger", "keygen", str(key), str(public)).returncode == 0
    signed = snapzen(env, "ledger", "checkpoint", str(checkpoint), "--signing-key", str(key))
    assert signed.returncode == 0
    shipped = checkpoint.with_name("cp.json.erasures.jsonl")
    assert shipped.read_text() == journal.read_text()

    # Disaster: the database is lost, the backup from before the erasure comes back, and the
    # erasure journal with it comes from the checkpoint's copy.
    ledger.unlink()
    # Its WAL goes with it: a stale -wal beside the restored file would be replayed into it.
    for suffix in ("-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    journal.unlink()
    shutil.copy(backup, ledger)
    shutil.copy(shipped, journal)
    with sqlite3.connect(ledger) as conn:  # the restored cases know nothing of the erasure
        assert conn.execute("SELECT count(*) FROM events WHERE event = 'erased'").fetchone()[0] == 0
        # Lose the person's cases too, as a backup older than their chats would: the next sync
        # fetches them again from SnapEngage.
        conn.execute("DELETE FROM cases WHERE subject_ref = ?", (ref,))
        conn.execute("UPDATE state SET cursor_day = NULL")
    reapplied = snapzen(env, "ledger", "reapply-erasures")
    assert reapplied.returncode == 0, reapplied.stdout + reapplied.stderr
    assert "1 erasure(s) re-applied" in reapplied.stdout

    before = {t["id"] for t in sb.tickets()}
    synced = snapzen(env, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    new = [t for t in sb.tickets() if t["id"] not in before]
    person = {c["id"] for c in sb.app.dataset.cases if c.get("requested_by") == email}
    assert not [t for t in new if t["external_id"].removeprefix("snapengage:") in person]
    assert all(t["deleted"] for t in sb.tickets() if t["id"] in tickets)
    with sqlite3.connect(ledger) as conn:
        statuses = {
            r[0] for r in conn.execute("SELECT status FROM cases WHERE subject_ref = ?", (ref,))
        }
        assert statuses <= {"withheld", "ignored"}, statuses
        erased = conn.execute(
            # keyed by its request period: the person's through the period index
            "SELECT count(*) FROM events WHERE event = 'erased' AND subject_ref IN "
            "(SELECT chain_ref FROM subject_periods WHERE lookup_ref = ?)",
            (ref,),
        ).fetchone()[0]
    assert erased == len(tickets)
    assert verify_cli(env).returncode == 0


def test_requests_list_open_first_and_deadline_clamps_month_end() -> None:
    # The deadline of a request received on a day: one month later, clamped to the month's end.
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_reconcile_deletes_expired_tickets_the_database_does_not_know(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """`retention sweep --reconcile` finds them by expires_YYYY_MM (archived ones too), keeps
    held ones and the current month's; archived tickets leave List Tickets and
    deleted_tickets but stay readable by id."""
    sb = make_sandbox(chats=4, seed=9, archive_after_seconds=0.2)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    store = sb.app.store
    today = datetime.now(UTC).date()
    past = "expires_2020_03"
    this_month = f"expires_{today.year:04d}_{today.month:02d}"

    def ticket(tag: str, ext: str) -> int:
        item = {"comment": {"body": "hi"}, "status": "solved", "tags": [tag], "external_id": ext}
        with store.lock:
            return int(store.create_ticket(item, False, None).data["id"])

    lost, held, current = (
        ticket(past, "snapengage:lost"),
        ticket(past, "x:2"),
        ticket(this_month, "x:3"),
    )
    skip_zendesk_clock(sb, 0.3)  # past the archiving age
    let_search_index(sb)  # and long enough ago for search to find them
    http = requests_session(sb)
    listed = {t["id"] for t in http.get(f"{sb.zendesk_base_url}/api/v2/tickets").json()["tickets"]}
    assert lost not in listed and any(t["archived"] for t in sb.tickets() if t["id"] == lost)
    assert http.get(f"{sb.zendesk_base_url}/api/v2/tickets/{lost}").status_code == 200

    assert snapzen(env, "ledger", "hold", "add", "--ticket", str(held),
                   "--reason", "litigation").returncode == 0  # fmt: skip
    done = snapzen(env, "retention", "sweep", "--reconcile", "--reconcile-months", "90",
                   "--purge", "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["reconciled"]["deleted"] == 1 and result["reconciled"]["held"] == 1
    state = {t["id"]: t for t in sb.tickets()}
    assert state[lost]["deleted"] and not state[held]["deleted"]
    assert not state[current]["deleted"]
    # Archived: not in the deleted-tickets list, and (unconfirmed for Zendesk) not purged.
    trash = http.get(f"{sb.zendesk_base_url}/api/v2/deleted_tickets").json()["deleted_tickets"]
    assert lost not in {t["id"] for t in trash}
    [event] = [e for e in ledger_events(ledger, "expired") if e["ticket_id"] == lost]
    assert event["case_id"] == "lost" and json.loads(event["details"])["tag"] == past
    again = json.loads(
        snapzen(
            env, "retention", "sweep", "--reconcile", "--reconcile-months", "90", "--json"
        ).stdout
    )
    assert again["reconciled"]["found"] == 0


def requests_session(sb: Any) -> Any:
    import requests

    session = requests.Session()
    session.auth = (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)
    return session


def _share_an_email(sb: Any) -> tuple[str, str, str]:
    """Give a second eligible visitor (another name) the first one's email, as a family
    mailbox would: (email, first case, second case). Settled chats only (an hour old)."""
    from tests.e2e.conftest import eligible

    hour_ago = datetime.now(UTC).timestamp() - 3600
    picked = [
        row["id"]
        for row in sb.app.dataset.truth
        if eligible(row) and row["email_valid"]
        and datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).timestamp()
        < hour_ago
    ][:2]  # fmt: skip
    assert len(picked) == 2, "the data set needs two settled, eligible chats with an email"
    cases = {c["id"]: c for c in sb.app.dataset.cases}
    first, second = cases[picked[0]], cases[picked[1]]
    assert first["requester_details"]["name"] != second["requester_details"]["name"]
    email = str(first["requested_by"])
    second["requested_by"] = email
    second["requester_details"]["emails"] = [email]
    return email, picked[0], picked[1]


def test_access_by_a_shared_email_is_refused_until_narrowed(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """Issue 17: an access pack for an email two people used would hand one of them the
    other's transcripts; like erasure it is refused (exit 2, candidates listed, nothing
    written or recorded) until narrowed, and then holds only the chosen person's chats."""
    sb = make_sandbox(chats=40, seed=5)
    email, mine, theirs = _share_an_email(sb)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger, **RECORD_ENV)
    with sqlite3.connect(ledger) as conn:
        found = dict(
            conn.execute(
                "SELECT case_id, ticket_id FROM cases WHERE case_id IN (?, ?) AND subject_ref = ?",
                (mine, theirs, subject_ref(LEDGER_KEY.encode(), email)),
            ).fetchall()
        )
    assert set(found) == {mine, theirs} and None not in found.values()

    out = tmp_path / "pack"
    refused = snapzen(env, "ledger", "access", "--email", email, "--out", str(out))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "2 different people" in refused.stderr
    assert f"--case {mine}" in refused.stderr and f"--case {theirs}" in refused.stderr
    assert email not in refused.stdout + refused.stderr
    assert not out.exists() and ledger_events(ledger, "access_provided") == [] == requests_json(env)

    # A case that is not under the reference is refused, as erasure refuses it.
    stranger = snapzen(env, "ledger", "access", "--email", email, "--case", "no-such-case",
                       "--out", str(out))  # fmt: skip
    assert stranger.returncode == 2 and "not a chat of this email reference" in stranger.stderr

    done = snapzen(env, "ledger", "access", "--email", email, "--ticket", str(found[mine]),
                   "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    pack = json.loads((out / "subject.json").read_text())
    # Zendesk search by the email finds both tickets (one requester); only mine is in the pack.
    assert [t["ticket_id"] for t in pack["tickets"]] == [found[mine]]
    assert [c["case_id"] for c in pack["chats"]] == [mine]
    assert {row["case_id"] for row in pack["ledger"]} == {mine}
    assert pack["asked_by"]["narrowed_to_chats"] is True
    assert theirs not in (out / "subject.html").read_text()

    # By the other person's case alone: their chat only, never mine.
    other = tmp_path / "other"
    by_case = snapzen(env, "ledger", "access", "--case", theirs, "--out", str(other))
    assert by_case.returncode == 0, by_case.stdout + by_case.stderr
    pack = json.loads((other / "subject.json").read_text())
    assert [t["ticket_id"] for t in pack["tickets"]] == [found[theirs]]
    assert mine not in (other / "subject.json").read_text()
    assert len(ledger_events(ledger, "access_provided")) == len(requests_json(env)) == 2
    assert chain_problems(ledger) == []
