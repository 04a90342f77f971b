"""When the pass polls its import jobs (``snapzen.sync.poll_plan``), on a fake clock.

The cadence (``job_poll_seconds``) saves rate-limit budget; while the rate window can pay for
it, or for the pass's last job, a job is polled when it is due, never more often than
``min_gap``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapzen.policy.models import JobResult, JobStatus
from snapzen.policy.transform import external_id
from snapzen.sync.contracts import Batch
from snapzen.sync.page_feed import FetchProgress
from snapzen.sync.poll_plan import PollPlan, budget, next_poll_at
from snapzen.sync.poller import Poller
from snapzen.sync.results_check import ResultCheck
from tests.sync_parts import FakeClock, inline_executor

GAP = 0.25


def when(
    *,
    waiting_for: str | None,
    answered: list[float] | None,
    job_seconds: float | None = 1.0,
    regular: float = 10.0,
    last_poll: float = 9.0,
) -> float:
    return next_poll_at(
        regular=regular,
        last_poll=last_poll,
        job_seconds=job_seconds,
        answered=answered,
        waiting_for=waiting_for,
        min_gap=GAP,
    )


def test_not_waiting_for_a_slot_keeps_the_cadence() -> None:
    assert when(waiting_for=None, answered=[9.0]) == 10.0


def test_unknown_job_duration_keeps_the_cadence() -> None:
    # Before any job was seen finished there is nothing to time an early poll by.
    assert when(waiting_for="first", answered=[9.0], job_seconds=None) == 10.0
    assert when(waiting_for="last", answered=None) == 10.0


def test_all_slots_taken_polls_when_the_first_job_is_due() -> None:
    # Jobs answered at 9.1 and 9.4, 0.5 s each: the first is due at 9.6, before the cadence.
    assert when(waiting_for="first", answered=[9.4, 9.1], job_seconds=0.5) == 9.6


def test_draining_polls_when_the_last_job_is_due() -> None:
    assert when(waiting_for="last", answered=[9.1, 9.4], job_seconds=0.5) == 9.9


def test_never_sooner_than_the_minimum_gap_after_the_last_poll() -> None:
    # Due at 9.1, but the last poll was at 9.0: not before 9.25.
    assert when(waiting_for="first", answered=[8.6], job_seconds=0.5) == 9.0 + GAP


def test_a_just_late_job_is_looked_at_again_after_the_gap() -> None:
    # Due at 8.9, polled at 9.0 and still running: again at 9.25, not at the 10.0 cadence.
    assert when(waiting_for="first", answered=[7.9], job_seconds=1.0) == 9.0 + GAP


def test_a_late_job_backs_off_by_how_late_it_is() -> None:
    # Due at 8.5, still running at 9.0 (0.5 s late): again at 9.5, then the cadence.
    assert when(waiting_for="first", answered=[7.5], job_seconds=1.0) == 9.5
    assert when(waiting_for="first", answered=[7.0], job_seconds=1.0, regular=10.5) == 10.0
    assert when(waiting_for="first", answered=[1.0], job_seconds=1.0) == 10.0  # the cadence


def test_one_quick_job_does_not_make_polls_run_every_gap() -> None:
    # Jobs take 20 s but one took 0.4 s: follow the early polls of one slow job through 20 s.
    polls, last, regular_every = 0, 0.0, 1.0
    answered = 0.0
    while True:
        at = when(
            waiting_for="first",
            answered=[answered],
            job_seconds=0.4,
            regular=last + regular_every,
            last_poll=last,
        )
        if at >= 20.0:
            break
        polls, last = polls + 1, at
    assert polls <= 25  # ~1 a second at the cadence, plus a few early ones (not 20 / 0.25)


def test_never_later_than_the_cadence() -> None:
    assert when(waiting_for="last", answered=[9.5], job_seconds=5.0) == 10.0


@given(
    regular=st.floats(0, 100),
    last_poll=st.floats(-100, 100),
    job_seconds=st.none() | st.floats(0, 50),
    answered=st.none() | st.lists(st.floats(-100, 100), min_size=1, max_size=30),
    waiting_for=st.sampled_from([None, "first", "last"]),
)
def test_property_bounded_by_the_cadence_and_the_gap(
    regular: float,
    last_poll: float,
    job_seconds: float | None,
    answered: list[float] | None,
    waiting_for: str | None,
) -> None:
    at = when(
        waiting_for=waiting_for,
        answered=answered,
        job_seconds=job_seconds,
        regular=regular,
        last_poll=last_poll,
    )
    assert at <= regular  # the cadence is the latest a poll may come
    if at < regular:  # an early poll: only while waiting, and never within the gap
        assert waiting_for is not None
        assert at >= last_poll + GAP


class _Sink:
    """Every job polled is done; the answer comes ``round_trip`` seconds (fake) after the
    poll leaves, which itself leaves ``held`` seconds after it was handed over."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.round_trip = 0.0
        self.held = 0.0

    def job_statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.clock.advance(self.held + self.round_trip)
        # Job "jobN" made ticket 100 + N for its one case, "cN".
        return {
            job: JobStatus(
                id=job, status="completed", results=[JobResult(index=0, id=100 + int(job[3:]))]
            )
            for job in job_ids
        }

    def show_tickets(self, ticket_ids: list[int]) -> dict[int, str | None]:
        return {t: external_id(f"c{t - 100}") for t in ticket_ids}


def _resolve(status: JobStatus, checked: ResultCheck) -> tuple[dict[str, int], dict[str, str]]:
    return checked.synced, checked.failures


def _poller(jobs_ago: tuple[float, ...], cadence: float = 5.0) -> tuple[Poller, FakeClock]:
    """Jobs in flight whose POSTs were answered ``jobs_ago`` seconds ago, each taking 1 s."""
    clock = FakeClock()
    plan = PollPlan(cadence, 0.08, clock)
    poller = Poller(
        _Sink(clock),  # type: ignore[arg-type]
        _resolve,
        plan,
        monotonic=clock,
        job_timeout=600.0,
        crash_hook=lambda _point: None,
        executor_factory=inline_executor,
    )
    for n, ago in enumerate(jobs_ago):
        poller.add(f"job{n}", Batch(f"b{n}", [f"c{n}"]), clock() - ago)
    plan.job_seconds = 1.0
    return poller, clock


def test_a_drain_with_requests_to_spare_polls_each_job_as_it_comes_due() -> None:
    """So its cases are recorded while the last jobs still run, not all after the last."""
    poller, _ = _poller((0.6, 0.3, 0.0))
    assert poller.wait("spare", draining=True) == pytest.approx(0.4)
    assert poller.wait("unknown", draining=True) == pytest.approx(0.4)


def test_a_drain_short_of_requests_polls_once_when_the_last_job_is_due() -> None:
    poller, _ = _poller((0.6, 0.3, 0.0))
    assert poller.wait("short", draining=True) == pytest.approx(1.0)
    assert poller.wait("short") == pytest.approx(5.0)  # not draining: the cadence


def test_a_job_is_expected_done_when_the_poll_that_found_it_was_sent() -> None:
    """How long after its POST's answer a job can be polled: from the poll's sending, not
    from its answer, which comes a round trip later (early polls then reach Zendesk when the
    job ends instead of one latency after)."""
    poller, _ = _poller((0.6,))
    poller.plan.job_seconds = None
    sink: Any = poller.sink
    sink.round_trip = 0.3
    poller.start()
    found = poller.finish()
    assert found.finished == 1 and not poller.jobs
    # Answered 0.6 s before the poll was sent; the answer came 0.3 s later still.
    assert poller.plan.job_seconds == pytest.approx(0.6)


def test_a_poll_that_waited_before_leaving_does_not_make_jobs_look_shorter() -> None:
    """A poll held back (the pacer, a retry's backoff) left later than it was handed over:
    its departure is taken as its answer less the shortest round trip seen, so the job it
    found done is not taken for 0.35 s shorter than it was."""
    poller, clock = _poller((0.6,))
    sink: Any = poller.sink
    sink.round_trip = 0.05
    poller.start()
    poller.finish()  # a quick poll: the shortest round trip, 0.05 s
    poller.plan.job_seconds = None
    poller.add("job9", Batch("b9", ["c9"]), clock() - 0.6)
    sink.held = 0.35  # this one waited 0.35 s before it left
    poller.start()
    poller.finish()
    assert poller.plan.job_seconds == pytest.approx(0.95)


def test_a_job_still_queued_after_the_timeout_is_left_for_recovery() -> None:
    poller, clock = _poller((0.0,))
    poller.job_timeout = 10.0
    sink: Any = poller.sink
    sink.job_statuses = lambda jobs: {j: JobStatus(id=j, status="queued") for j in jobs}
    poller.start()
    assert poller.finish().finished == 0 and "job0" in poller.jobs
    clock.advance(11.0)
    poller.start()
    assert poller.finish().finished == 0 and not poller.jobs  # let go, not recorded


def test_the_cases_a_fetch_has_yet_to_bring_are_estimated_from_the_windows_it_finished() -> None:
    progress = FetchProgress(expected=28)
    progress.fetched = 900
    assert progress.still_to_come() == 0  # no window ended yet: nothing to go on
    for cases in (350, 370):
        progress.window_ended(cases)
    # 26 windows left at ~360 each, less the 180 already fetched from those under way.
    assert progress.still_to_come() == 360 * 26 - 180
    assert FetchProgress(expected=None, fetched=5, ended=1, ended_cases=5).still_to_come() == 0
    done = FetchProgress(expected=2, fetched=10, ended=2, ended_cases=10)
    assert done.still_to_come() == 0


def test_early_polls_need_a_window_with_requests_beyond_the_imports_and_the_cadence() -> None:
    # 100 imports still to send; a 1 s cadence polls up to 60 times a (one-minute) window.
    assert budget(None, 10_000, 100, 1.0) == "unknown"  # no rate-limit headers seen yet
    assert budget(161, 10_000, 100, 1.0) == "spare"
    assert budget(160, 10_000, 100, 1.0) == "short"  # each early poll would displace an import
    assert budget(131, 10_000, 100, 2.0) == "spare"  # a slower cadence keeps back less
    assert budget(61, 0, 100, 1.0) == "spare" and budget(60, 0, 100, 1.0) == "short"


def test_a_window_too_small_for_the_imports_to_come_is_not_spent_on_early_polls() -> None:
    """Every one of 25 job slots taken, 2 of 28 windows fetched (720 cases, all sent): ~94
    imports are still to come (and a 5 s cadence's 12 polls), so a window with 100 requests
    left cannot spare polls and the pass polls at the cadence rather than when the first job
    is due (in 0.4 s)."""
    poller, _ = _poller((0.6, 0.3, *([0.0] * 23)))
    progress = FetchProgress(expected=28, fetched=720)
    progress.window_ended(360)
    progress.window_ended(360)
    to_come = progress.still_to_come()
    assert budget(100, to_come, 100, 5.0) == "short"
    assert poller.wait(budget(100, to_come, 100, 5.0)) == pytest.approx(5.0)
    assert budget(600, to_come, 100, 5.0) == "spare"
    assert poller.wait(budget(600, to_come, 100, 5.0)) == pytest.approx(0.4)
