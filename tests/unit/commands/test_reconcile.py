"""Settling imports in flight before a restore or adoption reads Zendesk (commands.reconcile),
and the references an adopted ticket gives its case (commands.requesters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapzen.commands.reconcile import InFlight, Waiting, read_in_flight, settle_jobs
from snapzen.commands.requesters import visitor_name, with_references
from snapzen.ledger.rights.subjects import name_ref, subject_ref
from snapzen.ledger.store import outbox
from snapzen.ledger.store.adopt import FoundTicket
from snapzen.ledger.store.db import LedgerError, create_ledger
from snapzen.policy.models import JobStatus
from tests.fakes import staged_case

KEY = b"inflight-ledger-key-0123456789ab"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeJobs:
    """Zendesk's job statuses: each job finishes after ``polls`` reads of it."""

    def __init__(self, jobs: dict[str, int], listed_polls: int = 0) -> None:
        self.left = dict(jobs)
        self.listed_left = listed_polls  # an import job with no stored id, unfinished
        self.lookups: list[str] = []

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        out = {}
        for job_id in job_ids:
            if job_id in self.left:
                self.left[job_id] -= 1
                done = self.left[job_id] <= 0
                out[job_id] = JobStatus(id=job_id, status="completed" if done else "working")
        return out

    def unfinished_jobs(self) -> list[JobStatus]:
        self.listed_left -= 1
        running = [j for j, n in self.left.items() if n > 0]
        if self.listed_left >= 0:
            running.append("anonymous")
        return [JobStatus(id=j, status="working", job_type="bulk_import_tickets") for j in running]

    def find_ticket_ids(self, external_id: str) -> list[int]:
        self.lookups.append(external_id)
        return []


def _waiting(timeout: float = 60.0, grace: float = 3600.0) -> tuple[Waiting, list[str]]:
    lines: list[str] = []
    clock = iter(range(10_000))
    waiting = Waiting(
        timeout=timeout,
        poll=1.0,
        grace=timedelta(seconds=grace),
        now=lambda: NOW,
        progress=lines.append,
        sleep=lambda _s: None,
        monotonic=lambda: float(next(clock)),
    )
    return waiting, lines


def test_stored_jobs_and_listed_jobs_are_waited_for_with_progress() -> None:
    sink = FakeJobs({"j1": 3, "j2": 1}, listed_polls=4)
    work = InFlight(pushing={"a": "j1", "b": "j2", "c": None}, pushed_at={"c": NOW})
    waiting, lines = _waiting()
    polls = settle_jobs(sink, work, waiting)
    assert polls == 5  # until the job without a stored id left the list too
    assert sink.left["j1"] <= 0
    assert lines[0].startswith("waiting for import jobs in flight")
    assert lines[-1] == "every import job in flight has finished"


def test_the_wait_is_bounded_and_refuses_changing_nothing() -> None:
    sink = FakeJobs({"j1": 10_000})
    waiting, _ = _waiting(timeout=5.0)
    with pytest.raises(LedgerError, match="still running in Zendesk after 5 s"):
        settle_jobs(sink, InFlight(pushing={"a": "j1"}), waiting)


def test_adoption_waits_for_zendesks_unfinished_imports() -> None:
    sink = FakeJobs({}, listed_polls=2)
    waiting, _ = _waiting()
    assert settle_jobs(sink, InFlight(), waiting) == 3


def test_ambiguous_pushes_older_than_the_grace_need_no_quiet_list() -> None:
    sink = FakeJobs({}, listed_polls=10_000)  # another integration keeps importing
    old = NOW - timedelta(hours=2)
    waiting, _ = _waiting(grace=3600.0)
    assert settle_jobs(sink, InFlight(pushing={"a": None}, pushed_at={"a": old}), waiting) == 1


def test_read_in_flight_reports_pushing_cases_jobs_and_the_oldest_unfinished(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.db"
    db = create_ledger(path, KEY, NOW)
    outbox.stage(db, [staged_case(c) for c in ("p1", "p2", "q")], NOW - timedelta(days=3))
    outbox.mark_pushing(db, "batch-1", {"p1": _draft(0)}, NOW, "run-1")
    outbox.set_job_id(db, "batch-1", "job-1")
    outbox.mark_pushing(db, "batch-2", {"p2": _draft(0)}, NOW, "run-1")
    db.conn.close()
    work = read_in_flight(path, KEY)
    assert work.pushing == {"p1": "job-1", "p2": None}
    assert set(work.pushed_at) == {"p2"} and work.job_ids == ["job-1"]
    assert work.earliest is not None and work.earliest <= NOW - timedelta(days=3)
    assert read_in_flight(tmp_path / "none.db", KEY).pushing == {}
    (tmp_path / "bad.db").write_bytes(b"not a database at all, not even close" * 100)
    assert read_in_flight(tmp_path / "bad.db", KEY).readable is False


def test_read_in_flight_reads_a_damaged_time_as_unknown(tmp_path: Path) -> None:
    """The ledger a restore replaces may be damaged: a time it cannot read is unknown (never
    taken as old), the rest of its unfinished work is still read."""
    path = tmp_path / "l.db"
    db = create_ledger(path, KEY, NOW)
    outbox.stage(db, [staged_case(c) for c in ("p1", "q")], NOW - timedelta(days=3))
    outbox.mark_pushing(db, "batch-1", {"p1": _draft(0)}, NOW, "run-1")
    db.conn.execute("UPDATE cases SET pushed_at = 'not a time' WHERE case_id = 'p1'")
    db.conn.execute("UPDATE cases SET first_seen_at = 12345 WHERE case_id = 'q'")
    db.conn.commit()
    db.conn.close()
    work = read_in_flight(path, KEY)
    assert work.readable and work.pushing == {"p1": None}
    assert work.pushed_at == {"p1": None} and work.earliest is None


def _draft(index: int) -> dict[str, object]:
    return {
        "outcome": "eligible",
        "legal_basis": None,
        "subject_ref": None,
        "transfer": None,
        "batch_index": index,
    }


def test_the_visitor_name_is_read_back_from_the_subject_snapzen_wrote() -> None:
    assert visitor_name("Chat with Ana María on 2026-11-02") == "Ana María"
    assert visitor_name("Chat with ana@example.com on 2026-11-02") is None  # no name given
    assert visitor_name("Chat with SnapEngage visitor on 2026-11-02") is None
    assert visitor_name("Refund please") is None and visitor_name(None) is None


class FakeUsers:
    def __init__(self, users: dict[int, str | None]) -> None:
        self.users = users
        self.asked: list[list[int]] = []

    def show_users(self, user_ids: Sequence[int]) -> dict[int, str | None]:
        self.asked.append(list(user_ids))
        return {i: self.users[i] for i in user_ids if i in self.users}


def test_references_come_from_the_replaced_ledger_first_then_the_ticket() -> None:
    found = {
        "known": [FoundTicket(1, None)],
        "ann": [FoundTicket(2, None)],
        "bob": [FoundTicket(3, None)],
        "nobody": [FoundTicket(4, None)],
    }
    raw = {
        1: {"requester_id": 7, "subject": "Chat with X on 2026-11-01"},
        2: {"requester_id": 7, "subject": "Chat with Ann on 2026-11-01"},
        3: {"requester_id": 7, "subject": "Chat with Bob on 2026-11-02"},
        4: {"requester_id": 8, "subject": "Chat with Nobody on 2026-11-02"},
    }
    users = FakeUsers({7: "Family@Example.com", 8: None})
    out = with_references(
        found, raw, KEY, users, known=lambda ids: {"known": ("ref-from-ledger", "name-ref")}
    )
    assert (out["known"][0].subject_ref, out["known"][0].name_ref) == (
        "ref-from-ledger",
        "name-ref",
    )
    shared = subject_ref(KEY, "family@example.com")
    assert out["ann"][0].subject_ref == out["bob"][0].subject_ref == shared
    # One Zendesk user for the shared email, yet two people: the subjects tell them apart.
    assert out["ann"][0].name_ref == name_ref(KEY, "Ann") != out["bob"][0].name_ref
    assert (out["nobody"][0].subject_ref, out["nobody"][0].name_ref) == (None, None)
    assert users.asked == [[7, 8]]  # one request for every requester


def test_the_backups_own_in_flight_cases_join_the_replaced_ledgers() -> None:
    old = NOW - timedelta(days=2)
    replaced = InFlight(pushing={"a": "j1"}, earliest=NOW)
    backup = InFlight(pushing={"a": None, "b": "j0"}, pushed_at={"a": old}, earliest=old)
    work = replaced.merged(backup)
    assert work.pushing == {"a": "j1", "b": "j0"} and work.job_ids == ["j0", "j1"]
    assert work.earliest == old
