"""The sync engine's parts driven on their own: submit, recovery, a pass on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snapzen.commands.clients import clients_from
from snapzen.ledger.store import outbox, runs, transitions
from snapzen.ledger.store.db import open_db, transaction
from snapzen.policy.models import JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.errors import AmbiguousWriteError, BadRequestError, TooManyJobsError
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.sync.batches import next_batch
from snapzen.sync.contracts import Counts
from snapzen.sync.pipeline import Pipeline
from snapzen.sync.prepare import CasePreparer
from snapzen.sync.recovery import Recovery
from snapzen.sync.results import Recorder
from snapzen.sync.submit import JobCapFull, post, settle
from tests.fakes import SandboxApis, make_case, recent
from tests.sync_parts import FakeClock

KEY = b"k" * 32


def statuses(db: Any) -> dict[str, str]:
    return dict(db.execute("SELECT case_id, status FROM cases").fetchall())


class _Parts:
    """Staged cases and the parts that batch and record them, on a settable wall clock."""

    def __init__(self, settings: Settings, sink: Any, n: int) -> None:
        self.now = datetime.now(UTC)
        self.db = open_db(settings.ledger.path)
        self.counts = Counts()
        self.preparer = CasePreparer(settings, KEY)
        self.recorder = Recorder(
            self.db,
            sink,
            self.counts,
            clock=lambda: self.now,
            run_id="r1",
            actor="test",
            progress=lambda _what, _n: None,
        )
        raws = [make_case(f"c{i}", started=recent(300)) for i in range(n)]
        outbox.stage(self.db, [self.preparer.stage("w1", raw) for raw in raws], self.now)

    def next_batch(self, size: int = 100) -> Any:
        return next_batch(self.db, self.preparer, self.recorder, size, lambda: self.now)


class _Sink:
    """Zendesk as submit and recovery see it: records what it was sent."""

    def __init__(self, parts: _Parts | None = None) -> None:
        self.parts = parts
        self.status_at_post: list[set[str]] = []
        self.tickets: dict[str, int] = {}  # external id -> ticket id
        self.fail: BaseException | None = None

    def submit_import(self, tickets: Any) -> JobStatus:
        assert self.parts is not None
        self.status_at_post.append(set(statuses(self.parts.db).values()))
        if self.fail is not None:
            raise self.fail
        return JobStatus(id=f"job{len(self.status_at_post)}", status="queued")

    def find_ticket_ids(self, external: str) -> list[int]:
        return [self.tickets[external]] if external in self.tickets else []

    def unfinished_jobs(self) -> list[JobStatus]:
        # An import job still queued somewhere: a lookup miss proves nothing yet.
        return [JobStatus(id="other", status="queued", job_type="bulk_import_tickets")]


def _submit(parts: _Parts, sink: _Sink, filled: Any) -> JobStatus | None:
    """The intent, the POST on its own thread, its answer taken back."""
    answer = post(parts.recorder, sink, filled, lambda _point: None, FakeClock())  # type: ignore[arg-type]
    settled = settle(parts.recorder, filled, answer, lambda _point: None)
    return None if settled is None else settled[0]


def test_the_intent_is_committed_before_the_post_and_the_job_id_after_it(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 150)
    sink.parts = parts
    first = parts.next_batch()
    assert first is not None and len(first.tickets) == 100
    job = _submit(parts, sink, first)
    assert job is not None and job.id == "job1"
    # The POST found its own batch already 'pushing' (the intent on disk first).
    assert sink.status_at_post == [{"pushing", "pending"}]
    row = parts.db.execute(
        "SELECT DISTINCT job_id FROM cases WHERE batch_id = ?", (first.batch.batch_id,)
    ).fetchall()
    assert row == [("job1",)]

    second = parts.next_batch()
    assert second is not None and len(second.tickets) == 50
    sink.fail = AmbiguousWriteError("timed out after sending")
    assert _submit(parts, sink, second) is None  # left 'pushing', without a job id
    assert sink.status_at_post[1] == {"pushing"}
    assert parts.counts.batches == 2 and parts.counts.ambiguous == 50
    assert set(statuses(parts.db).values()) == {"pushing"}


def test_a_refused_batch_fails_its_cases_and_a_full_job_cap_puts_them_back(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 4)
    sink.parts = parts
    sink.fail = TooManyJobsError("30 jobs queued or running")
    with pytest.raises(JobCapFull):
        _submit(parts, sink, parts.next_batch(2))
    assert set(statuses(parts.db).values()) == {"pending"}  # Zendesk did not act: go again
    sink.fail = BadRequestError("422 Unprocessable Entity")
    assert _submit(parts, sink, parts.next_batch(2)) is None
    assert sorted(statuses(parts.db).values()) == ["failed", "failed", "pending", "pending"]


def test_a_retry_goes_out_alone_and_the_cases_passed_over_stay_pending(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 5)
    parts.db.execute("UPDATE cases SET attempts = 1 WHERE case_id = 'c2'")
    parts.db.conn.commit()
    first = parts.next_batch(100)
    assert first is not None and "c2" not in first.batch.case_ids  # passed over, not lost
    assert set(statuses(parts.db).values()) == {"pending"}  # nothing taken for good yet
    outbox.mark_pushing(parts.db, first.batch.batch_id, first.drafts, parts.now, "r1")
    alone = parts.next_batch(100)
    assert alone is not None and alone.batch.case_ids == ["c2"]


def test_recovery_waits_for_the_grace_then_records_found_tickets_and_requeues_the_rest(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 3)
    filled = parts.next_batch()
    assert filled is not None
    outbox.mark_pushing(parts.db, filled.batch.batch_id, filled.drafts, parts.now, "r0")
    sink.tickets[external_id("c0")] = 41  # the ambiguous POST created only c0's ticket
    recovery = Recovery(parts.recorder, grace_seconds=600)
    parts.now += timedelta(seconds=599)
    recovery.run()
    assert set(statuses(parts.db).values()) == {"pushing"}  # a miss proves nothing yet
    parts.now += timedelta(seconds=2)
    recovery.run()
    assert statuses(parts.db) == {"c0": "synced", "c1": "pending", "c2": "pending"}
    assert parts.counts.recovered == 1 and parts.counts.created == 1


def test_recovery_reads_every_job_in_one_request_and_hands_back_those_still_running(
    settings: Settings,
) -> None:
    """Jobs left 'pushing' with their ids (a previous slice's, a stopped pass's): one
    job_statuses for all; a finished job is recorded, a running one is returned for the
    pass to poll, its cases still 'pushing' with their job id."""
    sink = _Sink()
    parts = _Parts(settings, sink, 4)
    for job in ["done", "running"]:
        filled = parts.next_batch(2)
        outbox.mark_pushing(parts.db, filled.batch.batch_id, filled.drafts, parts.now, "r0")
        outbox.set_job_id(parts.db, filled.batch.batch_id, job)
    asked: list[list[str]] = []

    def job_statuses(ids: list[str]) -> dict[str, JobStatus]:
        asked.append(sorted(ids))
        done = [{"index": i, "id": 50 + i} for i in range(2)]
        return {
            "done": JobStatus(id="done", status="completed", total=2, results=done),
            "running": JobStatus(id="running", status="working"),
        }

    def show_tickets(ids: list[int]) -> dict[int, str | None]:
        raise AssertionError("a clean answer is not read back")

    sink.job_statuses, sink.show_tickets = job_statuses, show_tickets  # type: ignore[attr-defined]
    running = Recovery(parts.recorder, grace_seconds=600).run()
    assert asked == [["done", "running"]]
    assert [batch.job_id for batch in running] == ["running"]
    assert sorted(statuses(parts.db).values()) == ["pushing", "pushing", "synced", "synced"]
    assert parts.counts.recovered == 2


def _fake_time_pass(
    settings: Settings, db: Any, clock: FakeClock, run_id: str = "r1", **extra: Any
) -> Pipeline:
    """A sync pass (run ``run_id``) against the test's sandbox whose waits are on ``clock``."""
    clients = clients_from(settings, sleep=lambda _s: None)
    runs.start_run(db, run_id, "sync", "test", datetime.now(UTC), None)
    return Pipeline(
        settings,
        db,
        clients.source,
        clients.sink,
        ledger_key=require_ledger_key(settings),
        run_id=run_id,
        actor="test",
        monotonic=clock,
        sleep=clock.advance,
        **extra,
    )


def test_a_pass_runs_to_its_end_on_a_fake_clock_with_few_polls(
    settings: Settings, apis: SandboxApis
) -> None:
    """250 chats, three batches, jobs done on their third poll: every wait of the pass is on
    the fake clock (no wall-clock sleep), and the jobs are polled together, not one by one."""
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(250)])
    apis.polls_until_done = 3
    clock = FakeClock()
    db = open_db(settings.ledger.path)
    pipeline = _fake_time_pass(settings, db, clock)
    result = pipeline.sync(["w1"])
    assert result.counts.created == 250 and result.exit_code == 0
    assert set(statuses(db).values()) == {"synced"}
    assert clock() > 1000.0  # the drain waited on the fake clock
    assert apis.requests["create_many"] == 3 and pipeline.jobs.polls == 3


def test_a_poll_that_frees_a_slot_sends_the_next_batch_before_it_records_what_it_found(
    settings: Settings, apis: SandboxApis
) -> None:
    """One job slot, three batches: each refill's intent (written just before its POST) comes
    before the finished job's cases are recorded, so the slot is not idle while a poll's
    results are written; they are still written, each case once, in the same pass."""
    settings.zendesk.max_jobs_in_flight = 1
    settings.zendesk.batch_size = 10
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(30)])
    db = open_db(settings.ledger.path)
    synced_at_intent: list[int] = []

    def hook(point: str) -> None:
        if point == "before_post":
            synced_at_intent.append(list(statuses(db).values()).count("synced"))

    pipeline = _fake_time_pass(settings, db, FakeClock(), crash_hook=hook)
    result = pipeline.sync(["w1"])
    assert synced_at_intent == [0, 0, 10]  # recorded after the refill: [0, 10, 20] before
    assert result.counts.created == 30 and set(statuses(db).values()) == {"synced"}
    assert set(apis.tickets_by_external_id().values()) == {1}


def _one_slot_pass_with_a_batch_built_ahead(
    settings: Settings, apis: SandboxApis, on_ahead: Any
) -> tuple[Any, Pipeline]:
    """One job slot, batches of 10, 30 chats: while the first batch's job runs the pass builds
    the next one ahead; ``on_ahead(pipeline)`` runs once, when the first job id is stored and
    that batch is built (nothing written for it: its cases are still 'pending')."""
    settings.zendesk.max_jobs_in_flight = 1
    settings.zendesk.batch_size = 10
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(30)])
    apis.polls_until_done = 2
    db = open_db(settings.ledger.path)
    pipeline = _fake_time_pass(settings, db, FakeClock())
    seen: list[str] = []

    def hook(point: str) -> None:
        if point == "after_job_id" and pipeline.ahead is not None and not seen:
            seen.extend(pipeline.ahead.batch.case_ids)
            assert {statuses(db)[case] for case in seen} == {"pending"}  # built, not written
            on_ahead(pipeline)

    pipeline.crash_hook = pipeline.jobs.crash_hook = hook
    return db, pipeline


def test_an_erasure_between_a_batch_built_ahead_and_its_post_keeps_the_erased_chat_out(
    settings: Settings, apis: SandboxApis
) -> None:
    """Between the build of a batch ahead and its POST, one of its chats is withheld for an
    erasure (the erase command's write) and another one's payload is refreshed by a later
    page: the batch is dropped and built again from the store, so the erased chat is never
    sent, the refreshed one goes with its new text, every POST finds its cases already
    'pushing' (the intent first), and each ticket is recorded against its own case."""
    changed: list[str] = []

    def erase_and_refresh(pipeline: Pipeline) -> None:
        assert pipeline.ahead is not None
        ahead = pipeline.ahead.batch.case_ids
        changed.extend([ahead[3], ahead[5]])
        with transaction(pipeline.db) as conn:
            transitions.withhold_for_erasure(conn, [ahead[3]], "2026-01-01T00:00:00.000Z")
        later = make_case(ahead[5], started=recent(300), messages=[("", "Refreshed text")])
        outbox.stage(pipeline.db, [pipeline.preparer.stage("w1", later)], datetime.now(UTC))

    db, pipeline = _one_slot_pass_with_a_batch_built_ahead(settings, apis, erase_and_refresh)
    at_post: list[set[str]] = []
    submit = pipeline.sink.submit_import

    def checked(tickets: Any) -> JobStatus:
        ids = {ticket.external_id for ticket in tickets}
        now = statuses(db)
        at_post.append({now[case] for case in now if external_id(case) in ids})
        return submit(tickets)

    pipeline.sink.submit_import = checked  # type: ignore[method-assign]
    result = pipeline.sync(["w1"])
    erased, refreshed = changed
    assert statuses(db)[erased] == "withheld"
    sent = {ticket["external_id"]: ticket for ticket in apis.tickets}
    assert external_id(erased) not in sent and len(sent) == len(apis.tickets) == 29
    assert "Refreshed text" in str(sent[external_id(refreshed)])
    assert at_post == [{"pushing"}] * 3  # every POST after its intent
    assert result.counts.created == 29
    rows = db.execute("SELECT case_id, status, ticket_id FROM cases").fetchall()
    ticket_of = {case: ticket for case, status, ticket in rows if status == "synced"}
    assert ticket_of == {case: sent[external_id(case)]["id"] for case in ticket_of}


def test_a_crash_with_a_batch_built_ahead_loses_nothing_and_sends_nothing_twice(
    settings: Settings, apis: SandboxApis
) -> None:
    """A crash while a batch is built ahead (its cases still 'pending', nothing written for
    them): the next pass recovers the job in flight and sends the rest, every chat once."""

    class Crash(Exception):
        pass

    def crash(_pipeline: Pipeline) -> None:
        raise Crash

    db, pipeline = _one_slot_pass_with_a_batch_built_ahead(settings, apis, crash)
    with pytest.raises(Crash):
        pipeline.sync(["w1"])
    assert sorted(statuses(db).values()).count("pending") == 20  # the ahead's included
    settings.zendesk.recovery_grace_seconds = 0
    result = _fake_time_pass(settings, db, FakeClock(), run_id="r2").sync(["w1"])
    assert set(statuses(db).values()) == {"synced"} and result.exit_code == 0
    assert len(apis.tickets) == 30
    assert set(apis.tickets_by_external_id().values()) == {1}


@pytest.mark.parametrize("refusal", ["too_many_jobs", "record_invalid", "dismissed"])
def test_a_batch_built_ahead_that_meets_a_refusal_or_a_dismissal_sends_each_chat_once(
    settings: Settings, apis: SandboxApis, refusal: str
) -> None:
    """Between the build of a batch ahead and its POST: Zendesk's job cap fills up (other
    integrations), or Zendesk refuses the batch (422 for one of its tickets), or one of its
    chats leaves 'pending' (dismissed by the operator): no chat is sent twice, none is lost
    (every other chat synced, a refused batch's by the next pass), and each ticket is
    recorded on its own case."""
    picked: list[str] = []

    def meet(pipeline: Pipeline) -> None:
        assert pipeline.ahead is not None
        picked.append(pipeline.ahead.batch.case_ids[4])
        if refusal == "too_many_jobs":
            apis.too_many_jobs_next = settings.http.max_attempts + 1
        elif refusal == "record_invalid":
            apis.reject_batches_with = {external_id(picked[0])}
        else:
            with transaction(pipeline.db) as conn:
                stamp = "2026-01-01T00:00:00.000Z"  # the dismiss command's write
                transitions.dismiss_failed(conn, picked, "spam", stamp, run_id="op", actor="op")

    db, pipeline = _one_slot_pass_with_a_batch_built_ahead(settings, apis, meet)
    pipeline.sync(["w1"])
    assert set(apis.tickets_by_external_id().values()) == {1}  # nothing sent twice
    _fake_time_pass(settings, db, FakeClock(), run_id="r2").sync(["w1"])
    assert set(apis.tickets_by_external_id().values()) == {1}
    now = statuses(db)
    others = {case: status for case, status in now.items() if case not in picked}
    assert set(others.values()) == {"synced"} and len(others) == 29  # nothing lost
    sent = {ticket["external_id"]: ticket["id"] for ticket in apis.tickets}
    assert external_id(picked[0]) not in sent or refusal == "too_many_jobs"
    rows = db.execute("SELECT case_id, ticket_id FROM cases WHERE status = 'synced'")
    assert {case: ticket for case, ticket in rows} == {
        case: sent[external_id(case)] for case in now if now[case] == "synced"
    }


class _LoadedClock(FakeClock):
    """A machine so loaded that every step of the pass takes longer than a poll interval:
    each reading of the clock is a second after the last."""

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_job_cap_wait_already_over_when_checked_is_retried_not_given_up(
    settings: Settings, apis: SandboxApis
) -> None:
    """Zendesk's cap held by others refuses the first POST; by the time the pass checks,
    the wait it set (one poll interval) is already over. The pass must try again (the cases
    synced, exit 0), not end 'ok' with every chat left pending (seen under load in
    tests/integration/test_pipeline.py::test_job_cap_held_by_others_is_waited_out_...)."""
    settings.zendesk.job_poll_seconds = 0.5
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.too_many_jobs_next = settings.http.max_attempts + 2
    db = open_db(settings.ledger.path)
    result = _fake_time_pass(settings, db, _LoadedClock()).sync(["w1"])
    assert result.exit_code == 0 and result.counts.created == 3
    assert set(statuses(db).values()) == {"synced"}
    assert set(apis.tickets_by_external_id().values()) == {1}
