"""When a job's slot is free again and when the pass polls its import jobs
(``snapzen.sync.jobs``), on a fake clock: slots free at the time a job can be done, learned from
the jobs that finished; polls when a cap's worth of results can be read, never on a cadence and
never in a busy loop (issue 25: polls timed to when jobs can finish)."""

from __future__ import annotations

import itertools
import math

import pytest

from snapzen.policy.models import JobStatus
from snapzen.sync.contracts import Batch
from snapzen.sync.jobs import GAP, RECENT, Jobs
from tests.sync_parts import FakeClock


class _TimedSink:
    """Zendesk's job statuses as fake time passes: job ``jobN`` is done ``seconds[N]`` (or
    ``default``) after it was added, polled or not."""

    def __init__(self, clock: FakeClock, default: float) -> None:
        self.clock = clock
        self.default = default
        self.seconds: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.polls: list[float] = []

    def job_statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        self.polls.append(self.clock())
        return {
            job: JobStatus(id=job, status="completed" if self._done(job) else "queued")
            for job in job_ids
        }

    def _done(self, job: str) -> bool:
        return self.clock() - self.started[job] >= self.seconds.get(job, self.default)


def _jobs(default: float = 8.0, first_guess: float = 1.0) -> tuple[Jobs, _TimedSink, FakeClock]:
    clock = FakeClock()
    sink = _TimedSink(clock, default)
    jobs = Jobs(
        sink,  # type: ignore[arg-type]
        lambda case_ids, _status: ({case: 1 for case in case_ids}, {}),
        first_guess=first_guess,
        job_timeout=600.0,
        monotonic=clock,
        crash_hook=lambda _point: None,
    )
    return jobs, sink, clock


def _add(jobs: Jobs, sink: _TimedSink, n: int) -> None:
    job_id = f"job{n}"
    sink.started[job_id] = sink.clock()
    jobs.add(job_id, Batch(f"b{n}", [f"c{n}"]))


def _poll_when_due(jobs: Jobs, clock: FakeClock, *, wait_for: int = 0) -> int:
    """Sleep (fake) until the next poll is due, poll; returns jobs finished."""
    at = jobs.poll_at(wait_for=wait_for)
    assert at is not None
    clock.now = max(clock.now, at)
    return jobs.poll().finished


def test_no_job_in_flight_means_no_poll() -> None:
    jobs, _, _ = _jobs()
    assert jobs.poll_at(wait_for=30) is None


def test_until_a_job_finished_the_wait_doubles_from_job_poll_seconds() -> None:
    """An 8 s job is polled 1, 2, 4 and 8 s after its POST's answer: four polls, not eight."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=1.0)
    start = clock()
    _add(jobs, sink, 0)
    finished = 0
    while not finished:
        finished = _poll_when_due(jobs, clock, wait_for=30)
    assert [t - start for t in sink.polls] == [1.0, 2.0, 4.0, 8.0]
    assert jobs.duration() == pytest.approx(8.0)


def test_the_duration_is_the_shortest_wait_after_which_a_poll_found_a_job_done() -> None:
    jobs, sink, clock = _jobs(default=3.0, first_guess=3.0)
    _add(jobs, sink, 0)
    clock.advance(0.5)
    _add(jobs, sink, 1)
    clock.advance(2.5)  # job0 is done (3 s), job1 runs (2.5 s)
    assert jobs.poll().finished == 1 and jobs.duration() == pytest.approx(3.0)
    clock.advance(1.0)  # job1 found done 3.5 s after its answer: a later poll, no shorter
    assert jobs.poll().finished == 1 and jobs.duration() == pytest.approx(3.0)


def test_until_a_job_finished_the_pass_polls_when_the_oldest_can_be_done() -> None:
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(3.0)
    _add(jobs, sink, 1)
    assert jobs.poll_at(wait_for=30) == pytest.approx(1008.0)  # job0's time
    assert jobs.running() == 2 and jobs.free_at() == math.inf  # only a poll frees a slot


def test_once_a_job_finished_a_slot_is_free_at_a_jobs_time_without_a_poll() -> None:
    """The duration learned (8 s from the POST's sending) frees each job's slot at its time:
    the next batch goes out then, with no poll; its results are read later."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    assert jobs.poll().finished == 1
    _add(jobs, sink, 1)
    clock.advance(3.0)
    _add(jobs, sink, 2)
    assert jobs.running() == 2 and jobs.free_at() == pytest.approx(clock() + 5.0)  # job1's
    clock.advance(5.0)
    assert jobs.running() == 1 and jobs.free_at() == pytest.approx(clock() + 3.0)
    assert len(sink.polls) == 1 and len(jobs.flying) == 2  # job1's result not read yet


def test_the_duration_counts_from_the_post_sent_so_a_slow_answer_frees_no_slot_early() -> None:
    """A job's slot is free ``duration`` after its POST was answered, the duration being the
    shortest time from a POST *sent* to a poll that found it done: a POST answered late (a
    slow network, a busy pass) lengthens the wait, never shortens it."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    sink.started["job0"] = clock()
    sent = clock()
    clock.advance(0.5)  # the POST took 0.5 s to be answered
    jobs.add("job0", Batch("b0", ["c0"]), sent=sent)
    clock.now = sent + 8.0
    assert jobs.poll().finished == 1 and jobs.duration() == pytest.approx(8.0)
    _add(jobs, sink, 1)
    assert jobs.free_at() == pytest.approx(clock() + 8.0)


def test_each_refusal_for_a_full_cap_holds_slots_longer_before_taking_them_free() -> None:
    """Zendesk refused a POST although a slot was taken to be free (jobs slower than the one
    the duration was learned from): a margin of the gap, then doubling, up to the longest
    wait, is added before a slot is free again."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=1.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    jobs.poll()
    _add(jobs, sink, 1)
    margins = []
    for _ in range(6):
        jobs.cap_was_full()
        margins.append(jobs.free_at() - (clock() + 8.0))
    assert margins == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0, 16.0])


def test_with_no_batch_left_to_send_the_pass_polls_once_when_the_newest_can_be_done() -> None:
    """Jobs that end within the gap of the newest are found by one poll at its time."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    assert jobs.poll().finished == 1  # the duration is known: 8 s
    _add(jobs, sink, 1)
    clock.advance(0.5)
    _add(jobs, sink, 2)
    assert jobs.poll_at() == pytest.approx(clock() + 8.0)  # job2's time
    clock.now = jobs.poll_at() or 0.0
    assert jobs.poll().finished == 2  # one poll finds both


def test_jobs_due_well_before_the_newest_are_recorded_while_it_runs() -> None:
    """The drain: one poll at the time of the jobs due more than the gap (1 s) before the
    newest, so their results are written while it still runs; then one at the newest's."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    jobs.poll()
    start = clock()
    for n, wait in ((1, 0.5), (2, 3.0), (3, 0.0)):  # job 3 starts 3 s after job 2
        _add(jobs, sink, n)
        clock.advance(wait)
    found = [_poll_when_due(jobs, clock), _poll_when_due(jobs, clock)]
    assert found == [2, 1]
    assert [round(t - start, 3) for t in sink.polls[1:]] == [8.5, 11.5]


def test_never_sooner_than_the_gap_after_the_last_poll() -> None:
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    jobs.poll()
    _add(jobs, sink, 1)
    clock.advance(0.01)
    jobs.flying["job1"].answered -= 100  # (its time long passed)
    assert jobs.poll_at(wait_for=30) == pytest.approx(clock() - 0.01 + GAP * 8.0)


def test_a_job_found_running_at_its_time_is_looked_at_again_after_as_long_as_it_is_late() -> None:
    """A job slower than the duration learned backs off: polls at +0, +1, +2, +4 s late, not
    one every gap, and holds its slot meanwhile."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    clock.advance(8.0)
    jobs.poll()  # duration 8 s
    _add(jobs, sink, 1)
    sink.seconds["job1"] = 13.0
    start = clock()
    while "job1" in jobs.flying:
        _poll_when_due(jobs, clock)
        assert "job1" not in jobs.flying or jobs.running() == 1
    assert [round(t - start, 3) for t in sink.polls[1:]] == [8.0, 9.0, 10.0, 12.0, 16.0]


def test_one_quick_job_stops_setting_the_duration_after_a_cap_of_further_jobs() -> None:
    jobs, sink, clock = _jobs(default=8.0, first_guess=8.0)
    _add(jobs, sink, 0)
    sink.seconds["job0"] = 1.0
    clock.advance(1.0)
    jobs.poll()
    assert jobs.duration() == pytest.approx(1.0)
    for n in range(1, RECENT + 1):
        _add(jobs, sink, n)
        clock.advance(8.0)
        jobs.poll()
    assert jobs.duration() == pytest.approx(8.0)


def test_a_job_still_queued_after_the_timeout_is_left_for_recovery() -> None:
    jobs, sink, clock = _jobs(default=10**6)
    jobs.job_timeout = 10.0
    _add(jobs, sink, 0)
    clock.advance(1.0)
    assert jobs.poll().finished == 0 and "job0" in jobs.flying
    clock.advance(10.0)
    found = jobs.poll()
    assert found.finished == 0 and not found.synced and not jobs.flying  # let go, unrecorded


def test_ninety_two_jobs_under_a_cap_of_thirty_keep_the_cap_full_with_few_polls() -> None:
    """The issue's shape at 10,000 chats: 92 jobs of 8 s, 30 slots, a POST every 0.15 s while
    a slot is free, as the pass does (sleeping until a poll is due or a slot is free). Once the
    first job is found done, no slot waits for a poll: the last job starts when the bound's
    waves say it can (its slot's chain: 3 x 8 s after the second job), never more than 30 run
    at once, and the pass needs one poll per ten jobs; the last job is found done at its end."""
    jobs, sink, clock = _jobs(default=8.0, first_guess=1.0)
    sent, done_at = 0, 0.0

    def poll_if_due() -> float:
        nonlocal done_at
        at = jobs.poll_at(wait_for=30 if sent < 92 else 0) or math.inf
        if clock() >= at:
            jobs.poll()
            done_at = clock()
        return at

    while sent < 92 or jobs.flying:
        while sent < 92 and jobs.running() < 30:
            assert sum(clock() - t < 8.0 for t in sink.started.values()) < 30  # Zendesk's cap
            _add(jobs, sink, sent)
            sent += 1
            clock.advance(0.15)
            poll_if_due()  # between batches, as the pass does
        clock.now = max(clock.now, min(poll_if_due(), jobs.free_at() if sent < 92 else math.inf))
        poll_if_due()
    last_started = max(sink.started.values())
    assert last_started - sink.started["job1"] == pytest.approx(3 * 8.0, abs=0.5)
    assert len(sink.polls) <= 92 / 10
    assert done_at - (last_started + 8.0) == pytest.approx(0.0, abs=0.2)


def test_a_job_queued_for_minutes_is_still_polled_every_sixteen_job_poll_seconds() -> None:
    """The doubling stops at 16 x job_poll_seconds: a slow queue costs a poll every 16 s, and a
    job is found done at most 16 s after it finished."""
    jobs, sink, clock = _jobs(default=100.0, first_guess=1.0)
    start = clock()
    _add(jobs, sink, 0)
    while "job0" in jobs.flying:
        _poll_when_due(jobs, clock, wait_for=30)
    ages = [t - start for t in sink.polls]
    assert ages[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(b - a for a, b in itertools.pairwise(ages)) == 16.0
    assert 100.0 <= ages[-1] < 116.0
