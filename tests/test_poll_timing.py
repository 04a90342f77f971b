"""When the pass polls its import jobs (``snapzen.sync.pipeline.next_poll_at``).

The cadence (``job_poll_seconds``) saves rate-limit budget; a pass waiting for a job slot or
for its last job polls when that job is due instead, never more often than ``min_gap``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapzen.ledger.db import open_db
from snapzen.policy.models import JobResult, JobStatus
from snapzen.support.settings import Settings
from snapzen.sync.pipeline import Pipeline, _Batch, _FetchProgress, next_poll_at

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
    """Rate-limit headroom as given; every job polled is done, answered ``round_trip`` later."""

    def __init__(self, spare: int | None) -> None:
        self.spare = spare
        self.round_trip = 0.0

    def spare_requests(self) -> int | None:
        return self.spare

    def job_statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        time.sleep(self.round_trip)
        return {
            job: JobStatus(id=job, status="completed", results=[JobResult(index=0, id=7)])
            for job in job_ids
        }


def _draining_pass(settings: Settings, db_path: Path, spare: int | None) -> Pipeline:
    """A pass with nothing left to submit and three jobs out, answered 0.6, 0.3 and 0.0 s
    ago, each taking 1 s: due in 0.4, 0.7 and 1.0 s."""
    slow_cadence = settings.model_copy(
        update={"zendesk": settings.zendesk.model_copy(update={"job_poll_seconds": 5.0})}
    )
    pipeline = Pipeline(
        slow_cadence,
        open_db(db_path),
        None,  # type: ignore[arg-type]
        _Sink(spare),  # type: ignore[arg-type]
        ledger_key=b"k" * 32,
        run_id="r1",
        actor="test",
    )
    now = time.monotonic()
    for n, ago in enumerate((0.6, 0.3, 0.0)):
        pipeline._in_flight[f"job{n}"] = (_Batch(f"b{n}", [f"c{n}"]), now - ago)
        pipeline._answered_at[f"job{n}"] = now - ago
    pipeline._job_seconds = 1.0
    return pipeline


def test_a_drain_with_requests_to_spare_polls_each_job_as_it_comes_due(
    settings: Settings,
) -> None:
    """So its cases are recorded while the last jobs still run, not all after the last."""
    pipeline = _draining_pass(settings, settings.ledger.path, spare=600)
    assert 0.3 < pipeline._poll_wait(draining=True) < 0.45


def test_a_drain_short_of_requests_polls_once_when_the_last_job_is_due(
    settings: Settings,
) -> None:
    for spare in (0,):  # the window spent: every request left is an import's
        pipeline = _draining_pass(settings, settings.ledger.path, spare=spare)
        assert 0.9 < pipeline._poll_wait(draining=True) <= 1.0


def test_a_job_is_expected_done_when_the_poll_that_found_it_was_sent(
    settings: Settings,
) -> None:
    """How long after its POST's answer a job can be polled: from the poll's sending, not
    from its answer, which comes a round trip later (early polls then reach Zendesk when the
    job ends instead of one latency after)."""
    pipeline = _draining_pass(settings, settings.ledger.path, spare=600)
    pipeline._job_seconds = None
    for job in ("job1", "job2"):
        del pipeline._in_flight[job]
    sink: Any = pipeline.sink
    sink.round_trip = 0.3
    sent = time.monotonic()
    pipeline._start_poll()
    pipeline._finish_poll(refill=None)
    pipeline._close_poller()
    assert "job0" not in pipeline._in_flight
    # Answered 0.6 s before the poll was sent; the answer came 0.3 s later still.
    assert pipeline._job_seconds == pytest.approx(0.6, abs=0.05)
    assert time.monotonic() - sent >= 0.3


def test_the_cases_a_fetch_has_yet_to_bring_are_estimated_from_the_windows_it_finished() -> None:
    progress = _FetchProgress(expected=28)
    progress.fetched = 900
    assert progress.still_to_come() == 0  # no window ended yet: nothing to go on
    for cases in (350, 370):
        progress.window_ended(cases)
    # 26 windows left at ~360 each, less the 180 already fetched from those under way.
    assert progress.still_to_come() == 360 * 26 - 180
    assert _FetchProgress(expected=None, fetched=5, ended=1, ended_cases=5).still_to_come() == 0
    done = _FetchProgress(expected=2, fetched=10, ended=2, ended_cases=10)
    assert done.still_to_come() == 0


def _submitting_pass(settings: Settings, spare: int) -> Pipeline:
    """Every one of the 25 job slots taken, fetching under way: 2 of 28 windows read, 720
    cases fetched, all of them sent."""
    pipeline = _draining_pass(settings, settings.ledger.path, spare=spare)
    now = time.monotonic()
    for n in range(3, 25):
        pipeline._in_flight[f"job{n}"] = (_Batch(f"b{n}", [f"c{n}"]), now)
        pipeline._answered_at[f"job{n}"] = now
    pipeline.counts.fetched = pipeline.counts.created = 720
    pipeline._fetch_progress = _FetchProgress(expected=28, fetched=720)
    pipeline._fetch_progress.window_ended(360)
    pipeline._fetch_progress.window_ended(360)
    return pipeline


def test_a_window_too_small_for_the_imports_to_come_is_not_spent_on_early_polls(
    settings: Settings,
) -> None:
    """~94 imports are still to come (26 windows of ~360 cases): a window with 90 requests
    left cannot spare polls, so even with every slot taken the pass polls at the cadence
    (5 s here) rather than when the first job is due (in 0.4 s)."""
    short = _submitting_pass(settings, spare=90)
    assert short._poll_budget() == "short"
    assert short._poll_wait() > 4.0
    plenty = _submitting_pass(settings, spare=600)
    assert plenty._poll_budget() == "spare"
    assert 0.3 < plenty._poll_wait() < 0.45


def test_a_poll_that_waited_before_leaving_does_not_make_jobs_look_shorter(
    settings: Settings,
) -> None:
    """A poll held back (the pacer, a retry's backoff) left later than it was handed over:
    its departure is taken as its answer less the shortest round trip seen, so the job it
    found done is not taken for 0.35 s shorter than it was."""
    pipeline = _draining_pass(settings, settings.ledger.path, spare=600)
    sink: Any = pipeline.sink
    for job in ("job1", "job2"):
        del pipeline._in_flight[job]
    sink.round_trip = 0.05
    pipeline._start_poll()
    pipeline._finish_poll(refill=None)  # a quick poll: the shortest round trip, ~0.05 s
    pipeline._job_seconds = None
    now = time.monotonic()
    pipeline._in_flight["job3"] = (_Batch("b3", ["c3"]), now - 0.6)
    pipeline._answered_at["job3"] = now - 0.6
    sink.round_trip = 0.4  # this one waited ~0.35 s before it left
    pipeline._start_poll()
    pipeline._finish_poll(refill=None)
    pipeline._close_poller()
    assert pipeline._job_seconds == pytest.approx(0.95, abs=0.05)
