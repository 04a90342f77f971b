"""A finished job's results at the poll (``snapzen.sync.jobs``): a clean answer is taken by
index with no request of its own; one in doubt has its tickets read back and a case is given
only the ticket whose external_id is its own. On a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from snapzen.policy.models import JobResult, JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.errors import AuthError, TransientNetworkError
from snapzen.sync.contracts import Batch
from snapzen.sync.jobs import Jobs
from snapzen.sync.results_check import check_results
from tests.sync_parts import FakeClock


class _Sink:
    """Zendesk as the poll sees it: every job completed, its results naming ``named`` tickets
    (job id -> ticket ids in case order), each ticket with the external_id in ``tickets``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.named: dict[str, list[int]] = {}
        self.tickets: dict[int, str | None] = {}
        self.read_back_errors: list[Exception] = []

    def job_statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.calls.append("job_statuses")
        return {
            job: JobStatus(
                id=job,
                status="completed",
                results=[JobResult(index=i, id=t) for i, t in enumerate(self.named[job])],
            )
            for job in job_ids
        }

    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        self.calls.append("show_tickets")
        if self.read_back_errors:
            raise self.read_back_errors.pop(0)
        return {t: self.tickets[t] for t in ticket_ids if t in self.tickets}


class _Resolved:
    """The Recorder's side: results checked (read back when in doubt), the cases without a
    usable result kept to be looked up by external_id."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.unknown: list[str] = []

    def __call__(
        self, case_ids: Sequence[str], status: JobStatus
    ) -> tuple[dict[str, int], dict[str, str]]:
        checked = check_results(case_ids, status, self.sink.show_tickets)
        self.unknown += checked.unknown
        return checked.synced, checked.failures


def _jobs(job_timeout: float = 600.0, *, in_doubt: bool = True) -> tuple[Jobs, _Sink, _Resolved]:
    clock = FakeClock()
    sink = _Sink(clock)
    resolved = _Resolved(sink)
    jobs = Jobs(
        sink,  # type: ignore[arg-type]
        resolved,
        first_guess=1.0,
        job_timeout=job_timeout,
        monotonic=clock,
        crash_hook=lambda _point: None,
    )
    # One job of three cases; Zendesk made tickets 7, 8 and 9 for them. In doubt, its answer
    # names ticket 8 twice (and never 9).
    sink.named["job1"] = [7, 8, 8] if in_doubt else [7, 8, 9]
    sink.tickets = {7: external_id("c0"), 8: external_id("c1"), 9: external_id("c2")}
    jobs.add("job1", Batch("b1", ["c0", "c1", "c2"]))
    return jobs, sink, resolved


def test_a_clean_answer_is_recorded_by_index_with_no_read_back() -> None:
    jobs, sink, resolved = _jobs(in_doubt=False)
    found = jobs.poll()
    assert sink.calls == ["job_statuses"]
    assert found.synced == {"c0": 7, "c1": 8, "c2": 9} and not resolved.unknown
    assert found.finished == 1 and not jobs.flying


def test_an_answer_in_doubt_is_read_back_and_each_case_gets_only_its_own_ticket() -> None:
    jobs, sink, resolved = _jobs()
    found = jobs.poll()
    assert sink.calls == ["job_statuses", "show_tickets"]
    assert found.synced == {"c0": 7, "c1": 8}
    assert resolved.unknown == ["c2"]  # its ticket was not named: looked up by external_id
    assert found.finished == 1 and not jobs.flying


def test_a_ticket_read_back_with_another_external_id_is_not_recorded() -> None:
    jobs, sink, resolved = _jobs()
    sink.tickets[8] = external_id("someone-else")
    found = jobs.poll()
    assert found.synced == {"c0": 7}  # c1 is not given ticket 8
    assert resolved.unknown == ["c1", "c2"]  # but looked up by its own external_id


def test_a_read_back_that_failed_leaves_the_job_in_flight_for_the_next_poll() -> None:
    jobs, sink, _ = _jobs()
    sink.read_back_errors = [TransientNetworkError("connection reset")]
    found = jobs.poll()
    assert found.finished == 0 and not found.synced and not found.failures
    assert "job1" in jobs.flying  # nothing recorded; still in flight
    assert jobs.poll().synced == {"c0": 7, "c1": 8}
    assert not jobs.flying


def test_a_job_never_read_back_is_let_go_after_the_timeout_unrecorded() -> None:
    jobs, sink, _ = _jobs(job_timeout=10.0)
    sink.read_back_errors = [TransientNetworkError("reset")] * 2
    assert jobs.poll().finished == 0 and "job1" in jobs.flying
    sink.clock.advance(11.0)
    found = jobs.poll()
    assert found.finished == 0 and not found.synced and not jobs.flying  # left for recovery


def test_a_refused_read_back_fails_the_poll_and_records_nothing() -> None:
    """As a failed job_statuses does: the pass ends and recovery re-reads the job."""
    jobs, sink, _ = _jobs()
    sink.read_back_errors = [AuthError("zendesk 403")]
    with pytest.raises(AuthError):
        jobs.poll()
    assert "job1" in jobs.flying
