"""A finished job's results are checked on the poller's thread, not the pass's: a clean answer
is taken by index with no request, one in doubt has its tickets read back there. No thread here
(the poll's work is held until the test runs it) and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from snapzen.policy.models import JobResult, JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.errors import AuthError, TransientNetworkError
from snapzen.sync.contracts import Batch
from snapzen.sync.poll_plan import PollPlan
from snapzen.sync.poller import Poller
from snapzen.sync.results_check import ResultCheck
from tests.sync_parts import FakeClock


class HeldExecutor(Executor):
    """The poller's threads, stood still: what the pass hands them runs only at ``run()``
    (and what that work hands on, the read-backs, runs at once within it)."""

    def __init__(self) -> None:
        self.held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self.running = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self.running:
            _settle(future, fn, args)
        else:
            self.held.append((future, fn, args))
        return future

    def run(self) -> None:
        held, self.held = self.held, []
        self.running = True
        try:
            for future, fn, args in held:
                _settle(future, fn, args)
        finally:
            self.running = False


def _settle(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        future.set_result(fn(*args))
    except BaseException as exc:
        future.set_exception(exc)


class _Sink:
    """Zendesk as the poll sees it: every job completed, its results naming ``named`` tickets
    (job id -> ticket ids in case order), each ticket with the external_id in ``tickets``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.named: dict[str, list[int]] = {}
        self.tickets: dict[int, str | None] = {}
        self.read_back_errors: list[Exception] = []
        self.read_back_seconds = 0.0

    def job_statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.calls.append("job_statuses")
        self.clock.advance(0.05)
        return {
            job: JobStatus(
                id=job,
                status="completed",
                results=[JobResult(index=i, id=t) for i, t in enumerate(self.named[job])],
            )
            for job in job_ids
        }

    def show_tickets(self, ticket_ids: list[int]) -> dict[int, str | None]:
        self.calls.append("show_tickets")
        self.clock.advance(self.read_back_seconds)
        if self.read_back_errors:
            raise self.read_back_errors.pop(0)
        return {t: self.tickets[t] for t in ticket_ids if t in self.tickets}


class _Resolved:
    """The pass's side of ``finish``: what it was handed, and that it asked Zendesk nothing."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.unknown: list[str] = []

    def __call__(
        self, status: JobStatus, checked: ResultCheck
    ) -> tuple[dict[str, int], dict[str, str]]:
        self.unknown += checked.unknown  # the Recorder looks these up by external_id
        return checked.synced, checked.failures


def _poller(
    job_timeout: float = 600.0, *, in_doubt: bool = True
) -> tuple[Poller, _Sink, HeldExecutor, _Resolved]:
    clock = FakeClock()
    sink = _Sink(clock)
    executor = HeldExecutor()
    resolved = _Resolved(sink)
    poller = Poller(
        sink,  # type: ignore[arg-type]
        resolved,
        PollPlan(1.0, 0.08, clock),
        monotonic=clock,
        job_timeout=job_timeout,
        crash_hook=lambda _point: None,
        executor_factory=lambda _n, _name: executor,
    )
    # One job of three cases; Zendesk made tickets 7, 8 and 9 for them. In doubt, its answer
    # names ticket 8 twice (and never 9).
    sink.named["job1"] = [7, 8, 8] if in_doubt else [7, 8, 9]
    sink.tickets = {7: external_id("c0"), 8: external_id("c1"), 9: external_id("c2")}
    poller.add("job1", Batch("b1", ["c0", "c1", "c2"]), clock())
    return poller, sink, executor, resolved


def test_a_clean_answer_is_recorded_by_index_with_no_read_back() -> None:
    poller, sink, executor, resolved = _poller(in_doubt=False)
    poller.start()
    executor.run()
    found = poller.finish()
    assert sink.calls == ["job_statuses"]
    assert found.synced == {"c0": 7, "c1": 8, "c2": 9} and not resolved.unknown
    assert found.finished == 1 and not poller.jobs


def test_the_read_back_is_the_poller_threads_and_the_pass_only_matches_and_records() -> None:
    poller, sink, executor, resolved = _poller()
    poller.start()
    assert sink.calls == []  # handed over: the pass's thread goes on with other work
    executor.run()
    assert sink.calls == ["job_statuses", "show_tickets"]  # both on the poller's thread
    found = poller.finish()
    assert sink.calls == ["job_statuses", "show_tickets"]  # finish asked Zendesk nothing
    assert found.synced == {"c0": 7, "c1": 8}
    assert resolved.unknown == ["c2"]  # its ticket was not named: looked up by external_id
    assert found.finished == 1 and not poller.jobs


def test_a_ticket_read_back_with_another_external_id_is_not_recorded() -> None:
    poller, sink, executor, resolved = _poller()
    sink.tickets[8] = external_id("someone-else")
    poller.start()
    executor.run()
    found = poller.finish()
    assert found.synced == {"c0": 7}  # c1 is not given ticket 8
    assert resolved.unknown == ["c1", "c2"]  # but looked up by its own external_id


def test_a_read_back_that_failed_leaves_the_job_in_flight_for_the_next_poll() -> None:
    poller, sink, executor, _ = _poller()
    sink.read_back_errors = [TransientNetworkError("connection reset")]
    poller.start()
    executor.run()
    found = poller.finish()
    assert found.finished == 0 and not found.synced and not found.failures
    assert "job1" in poller.jobs  # nothing recorded; still in flight
    poller.start()
    executor.run()
    assert poller.finish().synced == {"c0": 7, "c1": 8}
    assert not poller.jobs


def test_a_job_never_read_back_is_let_go_after_the_timeout_unrecorded() -> None:
    poller, sink, executor, _ = _poller(job_timeout=10.0)
    sink.read_back_errors = [TransientNetworkError("reset")] * 2
    poller.start()
    executor.run()
    assert poller.finish().finished == 0 and "job1" in poller.jobs
    sink.clock.advance(11.0)
    poller.start()
    executor.run()
    found = poller.finish()
    assert found.finished == 0 and not found.synced and not poller.jobs  # left for recovery


def test_a_refused_read_back_fails_the_poll_and_records_nothing() -> None:
    """As a failed job_statuses does: the pass ends and recovery re-reads the job."""
    poller, sink, executor, _ = _poller()
    sink.read_back_errors = [AuthError("zendesk 403")]
    poller.start()
    executor.run()
    with pytest.raises(AuthError):
        poller.finish()


def test_the_read_back_does_not_count_in_the_polls_round_trip() -> None:
    """The poll plan times jobs from the statuses' answer: a slow read-back after it must not
    make the poll look like it left later than it did (jobs would look shorter)."""
    poller, sink, executor, _ = _poller()
    sink.read_back_seconds = 0.5
    poller.start()
    executor.run()
    poller.finish()
    assert poller.plan.round_trip == pytest.approx(0.05)
