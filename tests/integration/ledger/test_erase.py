"""Art. 17 erasure against a stateful fake Zendesk, and the real adapter over a fake API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.clients.deletion import BulkTicketDeleter, DeletionOutcome, ZendeskUserEraser
from snapzen.commands import erase
from snapzen.ledger.evidence import verify
from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.rights.period_keys import lookup_of
from snapzen.ledger.store.db import open_db
from snapzen.policy.models import JobStatus
from snapzen.support.errors import AuthError, InvalidRecordError, NotFoundError, ServerError
from tests.ledger_fixtures import ALICE, KEY, append, transfer_fields

ALICE_REF = subject_ref(KEY, ALICE) or ""
ALICE_TICKETS = [1003, 1006, 1009]


class FakeZendesk:
    """Tickets exist until deleted; a deleted or unknown ticket counts as gone."""

    def __init__(self, tickets: Sequence[int], *, refuse: Sequence[int] = ()) -> None:
        self.tickets = set(tickets)
        self.refuse = set(refuse)
        self.calls: list[list[int]] = []
        self.expected: dict[int, str] = {}

    def delete(
        self,
        ticket_ids: Sequence[int],
        *,
        purge: bool,
        expected: Mapping[int, str] | None = None,
    ) -> dict[int, DeletionOutcome]:
        assert 1 <= len(ticket_ids) <= 100
        assert purge  # erasure leaves no copy in Zendesk's trash either
        self.calls.append(list(ticket_ids))
        self.expected.update(expected or {})
        outcomes = {}
        for ticket_id in ticket_ids:
            if ticket_id in self.refuse:
                outcomes[ticket_id] = DeletionOutcome(reason="refused")
            elif ticket_id in self.tickets:
                outcomes[ticket_id] = DeletionOutcome(deleted=True, purged=True)
            else:
                outcomes[ticket_id] = DeletionOutcome(already_gone=True)
        self.tickets -= {t for t, o in outcomes.items() if o.gone}
        return outcomes


@pytest.fixture
def zendesk() -> FakeZendesk:
    return FakeZendesk(range(1001, 1011))


def chain_ok(db: sqlite_utils.Database) -> bool:
    return verify.verify_ledger(db.conn).ok


def erased_rows(db: sqlite_utils.Database) -> list[dict[str, object]]:
    return list(db.query("SELECT * FROM events WHERE event = 'erased' ORDER BY seq"))


def test_dry_run_changes_nothing(db: sqlite_utils.Database, zendesk: FakeZendesk) -> None:
    result = erase.erase_subject(db, ALICE_REF, zendesk, dry_run=True)
    assert [t.ticket_id for t in result.plan.to_delete] == ALICE_TICKETS
    assert zendesk.calls == [] and erased_rows(db) == []


def test_erase_deletes_tickets_and_appends_events(
    db: sqlite_utils.Database, zendesk: FakeZendesk, ledger_path: Path
) -> None:
    result = erase.erase_subject(db, ALICE_REF, zendesk, actor="dpo")
    assert result.complete and sorted(result.deleted) == ALICE_TICKETS
    assert not zendesk.tickets & set(ALICE_TICKETS)
    rows = erased_rows(db)
    assert [r["ticket_id"] for r in rows] == ALICE_TICKETS
    assert [r["seq"] for r in rows] == result.event_seqs == [11, 12, 13]
    # Evidence of the answer, keyed by its request period: linkable until it is forgotten.
    assert {lookup_of(db.conn, r["subject_ref"]) for r in rows} == {ALICE_REF}
    assert ALICE_REF not in {r["subject_ref"] for r in rows}
    assert rows[0]["case_id"] == "case-3" and rows[0]["actor"] == "dpo"
    assert '"transfer_seq":3' in str(rows[0]["details"])
    assert '"reason":"art17_request"' in str(rows[0]["details"])
    assert chain_ok(db)
    run = db.execute("SELECT kind, outcome FROM runs WHERE run_id = ?", (result.run_id,))
    assert run.fetchone() == ("erase", "ok")
    db.conn.close()
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.glob("ledger.db*"))
    assert b"alice" not in raw.lower()  # the email never reaches the file (or its WAL)


def test_rerun_is_a_no_op(db: sqlite_utils.Database, zendesk: FakeZendesk) -> None:
    erase.erase_subject(db, ALICE_REF, zendesk)
    again = erase.erase_subject(db, ALICE_REF, zendesk)
    assert again.plan.to_delete == [] and again.plan.already_erased == ALICE_TICKETS
    assert len(zendesk.calls) == 1 and len(erased_rows(db)) == 3


def test_ticket_already_gone_counts_as_deleted(db: sqlite_utils.Database) -> None:
    zendesk = FakeZendesk([1006])  # 1003 and 1009 were deleted by hand in Zendesk
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert sorted(result.deleted) == ALICE_TICKETS and result.complete


def test_partial_failure_is_reported_and_finished_by_a_rerun(db: sqlite_utils.Database) -> None:
    zendesk = FakeZendesk(range(1001, 1011), refuse=[1006])
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert result.failed == [1006] and not result.complete
    assert [r["ticket_id"] for r in erased_rows(db)] == [1003, 1009]
    run = db.execute("SELECT outcome, exit_code FROM runs WHERE run_id = ?", (result.run_id,))
    assert run.fetchone() == ("partial", 3)
    zendesk.refuse.clear()
    again = erase.erase_subject(db, ALICE_REF, zendesk)
    assert again.deleted == [1006] and again.complete
    assert chain_ok(db)


def test_deleter_crash_still_records_what_was_deleted(db: sqlite_utils.Database) -> None:
    append(db, [transfer_fields(100 + i, subject_ref=ALICE_REF) for i in range(150)])
    zendesk = FakeZendesk(range(1000, 2000))
    original = zendesk.delete

    def flaky(
        ids: Sequence[int], *, purge: bool, expected: Mapping[int, str] | None = None
    ) -> dict[int, DeletionOutcome]:
        if len(zendesk.calls) == 1:
            raise ServerError("zendesk 503")
        return original(ids, purge=purge, expected=expected)

    zendesk.delete = flaky  # type: ignore[method-assign]
    with pytest.raises(ServerError):
        erase.erase_subject(db, ALICE_REF, zendesk)
    assert len(erased_rows(db)) == 100  # the first batch is gone, so it is on record
    assert chain_ok(db)


def test_batches_of_at_most_100(db: sqlite_utils.Database) -> None:
    append(db, [transfer_fields(100 + i, subject_ref=ALICE_REF) for i in range(250)])
    zendesk = FakeZendesk(range(1000, 2000))
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert [len(c) for c in zendesk.calls] == [100, 100, 53]
    assert len(result.deleted) == 253 and chain_ok(db)


def test_lock_is_held_while_planning_and_erasing(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    seen: list[str] = []

    @contextmanager
    def lock() -> Iterator[None]:
        seen.append("acquired")
        yield
        seen.append(f"released after {len(zendesk.calls)} calls")

    erase.erase_subject(db, ALICE_REF, zendesk, lock=lock())
    assert seen == ["acquired", "released after 1 calls"]


def test_unknown_subject_does_nothing(db: sqlite_utils.Database, zendesk: FakeZendesk) -> None:
    result = erase.erase_subject(db, "0" * 64, zendesk)
    assert result.plan.transfers == 0 and zendesk.calls == [] and result.complete


def test_expired_tickets_are_not_deleted_again(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    append(db, [transfer_fields(40, event="expired", ticket_id=1003, subject_ref=ALICE_REF)])
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert sorted(result.deleted) == [1006, 1009] and result.plan.already_erased == [1003]


# --- the Zendesk adapter ------------------------------------------------------------------


class FakeBulkApi:
    """destroy_many answers 404 when any id is unknown (worst case), else a job."""

    def __init__(
        self,
        tickets: set[int],
        *,
        job_status: str = "completed",
        external_ids: dict[int, str] | None = None,
    ) -> None:
        self.tickets = tickets
        self.external_ids = external_ids or {}  # what tickets/show_many shows per live ticket
        self.deleted: set[int] = set()
        self.purged: list[int] = []
        self.job_status = job_status
        self.destroy_calls = 0

    def destroy_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        self.destroy_calls += 1
        if any(t not in self.tickets for t in ticket_ids):
            raise NotFoundError("zendesk DELETE /api/v2/tickets/destroy_many: 404")
        if self.job_status == "completed":
            self.tickets -= set(ticket_ids)
            self.deleted |= set(ticket_ids)
        return JobStatus(id=f"job{self.destroy_calls}", status="queued")

    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        return {t: self.external_ids.get(t) for t in ticket_ids if t in self.tickets}

    def purge_deleted_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        self.purged.extend(ticket_ids)
        return JobStatus(id="purge", status="completed")

    def wait_for_jobs(
        self, job_ids: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, JobStatus]:
        return {j: JobStatus(id=j, status=self.job_status) for j in job_ids}


def _alice_external_ids(db: sqlite_utils.Database) -> dict[int, str]:
    plan = erase.erase_subject(db, ALICE_REF, None, dry_run=True).plan
    return {t.ticket_id: f"snapengage:{t.case_id}" for t in plan.to_delete}


def test_erase_with_adapter_end_to_end(db: sqlite_utils.Database, ledger_path: Path) -> None:
    # 1006 already deleted in Zendesk; the others carry their cases' external_ids.
    api = FakeBulkApi({1003, 1009}, external_ids=_alice_external_ids(db))
    result = erase.erase_subject(db, ALICE_REF, BulkTicketDeleter(api))
    assert sorted(result.deleted) == ALICE_TICKETS
    reopened = open_db(ledger_path, read_only=True)
    assert verify.verify_ledger(reopened.conn).ok


def test_erase_soft_deletes_then_purges_through_the_shared_deleter(
    db: sqlite_utils.Database,
) -> None:
    # The deleter the retention sweep uses; erasure always asks for the purge too.
    api = FakeBulkApi(set(ALICE_TICKETS), external_ids=_alice_external_ids(db))
    result = erase.erase_subject(db, ALICE_REF, BulkTicketDeleter(api))
    assert api.deleted == set(ALICE_TICKETS) and sorted(api.purged) == ALICE_TICKETS
    assert all(result.outcomes[t].deleted and result.outcomes[t].purged for t in ALICE_TICKETS)


def test_erase_counts_a_missing_ticket_as_gone_and_does_not_purge_it(
    db: sqlite_utils.Database,
) -> None:
    api = FakeBulkApi({1003, 1009}, external_ids=_alice_external_ids(db))
    result = erase.erase_subject(db, ALICE_REF, BulkTicketDeleter(api))
    assert sorted(result.deleted) == ALICE_TICKETS and result.complete
    assert result.outcomes[1006].already_gone and 1006 not in api.purged


def test_erase_after_a_failed_job_deletes_and_records_nothing(
    db: sqlite_utils.Database,
) -> None:
    api = FakeBulkApi(set(ALICE_TICKETS), job_status="failed", external_ids=_alice_external_ids(db))
    result = erase.erase_subject(db, ALICE_REF, BulkTicketDeleter(api))
    assert result.deleted == [] and sorted(result.failed) == ALICE_TICKETS
    assert api.purged == [] and erased_rows(db) == []
    assert "job1 failed" in (result.outcomes[1003].reason or "")


def test_erase_never_deletes_a_ticket_another_case_created(db: sqlite_utils.Database) -> None:
    # The ledger says 1003 is Alice's, but Zendesk shows it was created for another chat
    # (job results once out of step): erasing Alice must not delete someone else's ticket.
    external_ids = {**_alice_external_ids(db), 1003: "snapengage:someone-else"}
    api = FakeBulkApi({1003, 1006, 1009}, external_ids=external_ids)
    result = erase.erase_subject(db, ALICE_REF, BulkTicketDeleter(api))
    assert 1003 in api.tickets and 1003 not in api.deleted
    assert result.failed == [1003] and sorted(result.deleted) == [1006, 1009]
    assert 1003 not in {r["ticket_id"] for r in erased_rows(db)}


def test_erase_also_finds_unrestricted_tickets_through_cases(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    """A visitor from outside the EEA/UK has no transfer row, but their ticket is theirs."""
    stamp = "2026-01-01T00:00:00Z"
    db.execute(
        """INSERT INTO cases (case_id, widget_id, status, subject_ref, ticket_id,
               first_seen_at, updated_at) VALUES ('us-chat', 'w1', 'synced', ?, 1010, ?, ?)""",
        (ALICE_REF, stamp, stamp),
    )
    db.conn.commit()
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert sorted(result.deleted) == [*ALICE_TICKETS, 1010]
    rows = {r["ticket_id"]: r for r in erased_rows(db)}
    assert rows[1010]["case_id"] == "us-chat"
    assert '"transfer_seq":null' in str(rows[1010]["details"])
    assert chain_ok(db)


# --- the Zendesk user profile (--delete-user) ---------------------------------------------


class FakeLagWindow:
    """``ZendeskClient.lag_window``: the tickets changed in the last minutes, by id."""

    def __init__(self) -> None:
        self.recent: dict[int, dict[str, object]] = {}
        self.unread = False  # the export refused a read: it may miss tickets

    def tickets(self) -> dict[int, dict[str, object]]:
        return self.recent


class FakeUserApi:
    """Users live, soft-deleted (trash) or purged; search reads a separate index, which may
    lag (Zendesk's search index does), so a user may be listed after it was deleted."""

    def __init__(self) -> None:
        self.live: dict[int, dict[str, object]] = {}
        self.trash: set[int] = set()
        self.purged: set[int] = set()
        self.index: list[dict[str, object]] = []
        self.refuse: dict[int, Exception] = {}
        self.calls: list[tuple[str, int]] = []
        self.named: dict[int, list[int]] = {}  # user id -> tickets naming them (other channels)
        self.requester_of: dict[int, int] = {}  # live ticket id -> requester (tickets/show_many)
        self.lag_window = FakeLagWindow()  # tickets changed lately, deleted ones too

    def add(
        self, user_id: int, email: str, role: str = "end-user", *, indexed: bool = True
    ) -> None:
        """``indexed=False``: created minutes ago, search does not show it yet."""
        user: dict[str, object] = {"id": user_id, "email": email, "role": role}
        self.live[user_id] = user
        if indexed:
            self.index.append(user)

    def find_users_by_email(self, email: str) -> list[dict[str, object]]:
        self.calls.append(("search", 0))
        return [dict(u) for u in self.index if str(u["email"]).lower() == email.lower()]

    def user_ticket_ids(self, user_id: int) -> list[int]:
        return list(self.named.get(user_id, []))

    def ticket_requesters(self, ticket_ids: Sequence[int]) -> dict[int, int]:
        return {t: self.requester_of[t] for t in ticket_ids if t in self.requester_of}

    def show_user(self, user_id: int) -> dict[str, object] | None:
        self.calls.append(("show", user_id))
        user = self.live.get(user_id)
        return dict(user) if user is not None else None

    def delete_user(self, user_id: int) -> None:
        self.calls.append(("delete", user_id))
        if user_id in self.refuse:
            raise self.refuse[user_id]
        if user_id not in self.live:
            raise NotFoundError("zendesk DELETE /api/v2/users/{id}: 404")
        del self.live[user_id]
        self.trash.add(user_id)
        self.index = [u for u in self.index if u["id"] != user_id]

    def purge_deleted_user(self, user_id: int) -> None:
        self.calls.append(("purge", user_id))
        if user_id not in self.trash:
            raise NotFoundError("zendesk DELETE /api/v2/deleted_users/{id}: 404")
        self.trash.discard(user_id)
        self.purged.add(user_id)


@pytest.fixture
def users() -> FakeUserApi:
    api = FakeUserApi()
    api.add(77, "alice@example.com")
    api.add(88, "bob@example.org")
    return api


def eraser(api: FakeUserApi, email: str = ALICE) -> ZendeskUserEraser:
    return ZendeskUserEraser(api, email)


def run_details(db: sqlite_utils.Database, run_id: str | None) -> tuple[str, int, dict[str, int]]:
    row = db.execute(
        "SELECT outcome, exit_code, details FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return row[0], row[1], json.loads(row[2])


def test_end_user_is_deleted_then_purged_after_the_tickets(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi, ledger_path: Path
) -> None:
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert result.complete and sorted(result.deleted) == ALICE_TICKETS
    assert users.calls == [("search", 0), ("delete", 77), ("purge", 77)]
    assert users.purged == {77} and 88 in users.live
    assert result.users is not None and result.users.deleted == [77]
    outcome, code, details = run_details(db, result.run_id)
    assert (outcome, code) == ("ok", 0)
    assert details == {
        "erased": 3, "failed": 0, "zendesk_users_deleted": 1, "zendesk_users_not_deleted": 0
    }  # fmt: skip
    db.conn.close()
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.glob("ledger.db*"))
    assert b"alice" not in raw.lower()


def test_without_users_the_run_details_are_unchanged(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    result = erase.erase_subject(db, ALICE_REF, zendesk)
    assert result.users is None and result.complete
    assert run_details(db, result.run_id)[2] == {"erased": 3, "failed": 0}


def test_agent_is_refused_and_the_erasure_is_partial(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    api = FakeUserApi()
    api.add(5, ALICE.upper(), role="agent")
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(api))
    assert result.users is not None and result.users.refused == [5]
    assert 5 in api.live and ("delete", 5) not in api.calls
    assert not result.complete and sorted(result.deleted) == ALICE_TICKETS
    outcome, code, details = run_details(db, result.run_id)
    assert (outcome, code) == ("partial", 3)
    assert details["zendesk_users_deleted"] == 0 and details["zendesk_users_not_deleted"] == 1


def test_404_on_delete_and_purge_counts_as_done(db: sqlite_utils.Database) -> None:
    api = FakeUserApi()
    api.index.append({"id": 9, "email": ALICE, "role": "end-user"})  # stale search index
    result = eraser(api).erase()
    assert result.deleted == [9] and result.complete
    assert api.calls == [("search", 0), ("delete", 9), ("purge", 9)]


def test_refusal_is_reported_by_id_without_personal_data(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    users.refuse[77] = InvalidRecordError("422: Alice Example <alice@example.com> cannot go")
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert result.users is not None and list(result.users.failed) == [77]
    reason = result.users.failed[77]
    assert "InvalidRecordError" in reason and "alice" not in reason.lower()
    assert 77 in users.live and ("purge", 77) not in users.calls
    assert not result.complete
    assert run_details(db, result.run_id)[:2] == ("partial", 3)
    # The rerun (refusal lifted) deletes the profile; the tickets are not deleted again.
    users.refuse.clear()
    again = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert again.complete and again.deleted == [] and users.purged == {77}
    assert run_details(db, again.run_id)[2]["zendesk_users_deleted"] == 1


def test_user_untouched_while_a_ticket_failed(
    db: sqlite_utils.Database, users: FakeUserApi
) -> None:
    zendesk = FakeZendesk(range(1001, 1011), refuse=[1006])
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert result.failed == [1006] and result.users is None and not result.complete
    assert users.calls == [] and 77 in users.live
    assert run_details(db, result.run_id)[2]["zendesk_users_deleted"] == 0


def test_user_untouched_while_a_chat_is_being_sent(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    stamp = "2026-01-01T00:00:00Z"
    db.execute(
        """INSERT INTO cases (case_id, widget_id, status, subject_ref, first_seen_at,
               updated_at) VALUES ('flying', 'w1', 'pushing', ?, ?, ?)""",
        (ALICE_REF, stamp, stamp),
    )
    db.conn.commit()
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert result.users is None and users.calls == [] and not result.complete


def test_auth_error_propagates_and_the_tickets_stay_recorded(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    users.refuse[77] = AuthError("zendesk refused our role or permissions")
    with pytest.raises(AuthError):
        erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert len(erased_rows(db)) == 3 and chain_ok(db)
    assert db.execute("SELECT outcome FROM runs WHERE kind = 'erase'").fetchone() == ("aborted",)


def test_dry_run_only_looks_the_user_up(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    result = erase.erase_subject(db, ALICE_REF, None, dry_run=True, users=eraser(users))
    assert result.users is not None and result.users.to_delete == [77]
    assert users.calls == [("search", 0)] and 77 in users.live and zendesk.calls == []


def test_rerun_after_full_erasure_is_a_no_op(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()
    again = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert again.complete and again.users is not None and again.users.to_delete == []
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == runs
    assert users.calls[-1] == ("search", 0)


def test_a_user_another_ticket_names_is_kept_and_the_ticket_reported(
    db: sqlite_utils.Database, zendesk: FakeZendesk, users: FakeUserApi
) -> None:
    users.named[77] = [901, 902]  # e.g. email tickets snapzen did not create
    planned = eraser(users).plan()
    assert planned.to_delete == [] and planned.blocked == {77: [901, 902]}
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(users))
    assert sorted(result.deleted) == ALICE_TICKETS
    assert result.users is not None and result.users.blocked == {77: [901, 902]}
    assert ("delete", 77) not in users.calls and 77 in users.live
    assert result.users.deleted == [] and result.complete
    assert run_details(db, result.run_id)[2]["zendesk_users_kept"] == 1


def test_a_profile_search_does_not_show_yet_is_found_through_the_tickets(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    api = FakeUserApi()
    api.add(78, ALICE, indexed=False)  # the chats were synced minutes ago
    api.requester_of = dict.fromkeys(ALICE_TICKETS, 78)
    dry = erase.erase_subject(db, ALICE_REF, None, dry_run=True, users=eraser(api))
    assert dry.users is not None and dry.users.to_delete == [78]
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(api))
    assert result.complete and result.users is not None and result.users.deleted == [78]
    assert api.purged == {78}
    assert run_details(db, result.run_id)[2]["zendesk_users_deleted"] == 1


def test_a_rerun_minutes_after_a_stopped_erasure_still_finds_the_new_profile(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    api = FakeUserApi()
    api.add(78, ALICE, indexed=False)
    api.requester_of = dict.fromkeys(ALICE_TICKETS, 78)
    api.refuse[78] = AuthError("zendesk refused our role or permissions")
    with pytest.raises(AuthError):
        erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(api))
    # The tickets are gone: show_many no longer lists them, the export of the last minutes does.
    api.requester_of.clear()
    api.lag_window.recent = {
        t: {"id": t, "status": "deleted", "requester_id": 78} for t in ALICE_TICKETS
    }
    api.refuse.clear()
    again = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(api))
    assert again.deleted == [] and again.complete
    assert again.users is not None and again.users.deleted == [78] and api.purged == {78}


def test_no_profile_found_while_the_export_refused_is_not_confirmed_and_partial(
    db: sqlite_utils.Database, zendesk: FakeZendesk
) -> None:
    api = FakeUserApi()
    api.add(78, ALICE, indexed=False)
    api.lag_window.unread = True  # their tickets are not live, and the window could not be read
    result = erase.erase_subject(db, ALICE_REF, zendesk, users=eraser(api))
    assert sorted(result.deleted) == ALICE_TICKETS
    assert result.users is not None and result.users.unconfirmed == ALICE_TICKETS
    assert not result.complete and 78 in api.live
    outcome, code, details = run_details(db, result.run_id)
    assert (outcome, code) == ("partial", 3) and details["zendesk_users_not_confirmed"] == 1
