"""The import jobs in flight, and polling them: one show_many for every job at a time, sent on
the poller thread (HTTP only) while the pass stages, prepares and posts. The same thread checks
the results of the jobs it finds finished (``check_results``: a clean answer is taken by index;
one in doubt has its tickets read back by ``tickets/show_many``), so the pass's thread, taking
the answer back (``finish``), only matches and writes. When to poll is ``poll_plan``'s rule.

Threads are made by ``executor_factory``; a test passes an inline executor and drives the
part without any.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from snapzen.policy.models import JobStatus
from snapzen.support.errors import RetriableError, RetriesExhausted
from snapzen.support.log import get_logger, one_line
from snapzen.sync.contracts import (
    Batch,
    CrashHook,
    ExecutorFactory,
    Monotonic,
    Sink,
    thread_pool,
)
from snapzen.sync.poll_plan import Budget, PollPlan
from snapzen.sync.results_check import ResultCheck, check_results

log = get_logger("snapzen.sync.poller")

# A finished job's read-back results mapped to cases (``Recorder.resolve_checked``).
Resolve = Callable[[JobStatus, ResultCheck], tuple[dict[str, int], dict[str, str]]]

# A read-back failing with these (the client already retried) leaves its job in flight for
# the next poll; any other error (a refused token, an answer of the wrong shape) fails the
# pass, as a failed job_statuses does, and its jobs stay 'pushing' for recovery.
READ_BACK_LATER = (RetriableError, RetriesExhausted)


@dataclass
class PollAnswer:
    """What the poller thread found: the statuses, when they came (the read-backs come after,
    and must not make the poll look slower to ``poll_plan``), and the read-back results of the
    finished jobs whose tickets could be read."""

    statuses: dict[str, JobStatus]
    answered: float
    checked: dict[str, ResultCheck] = field(default_factory=dict)


@dataclass
class Polling:
    """A poll out on the poller thread: its answer to come, the jobs it asked about, and when
    it was handed over."""

    future: Future[PollAnswer]
    polled: list[str]
    sent: float


def poll_jobs(sink: Sink, monotonic: Monotonic, polled: Mapping[str, Sequence[str]]) -> PollAnswer:
    """Run on the poller thread (HTTP only, no ledger): the statuses of the jobs ``polled``
    (job id -> its cases in ticket order), then each finished job's results checked (a read-back
    only for an answer in doubt, which is rare: one after another is enough)."""
    statuses = sink.job_statuses(list(polled))
    answer = PollAnswer(statuses, monotonic())
    for job_id, case_ids in polled.items():
        status = statuses.get(job_id)
        if status is None or not status.finished:
            continue
        try:
            answer.checked[job_id] = check_results(case_ids, status, sink.show_tickets)
        except READ_BACK_LATER as exc:
            # Not recorded without its read-back: the job stays in flight for the next poll
            # (or, past job_timeout, 'pushing' for recovery).
            log.warning("job_read_back_failed", job_id=job_id, error=one_line(exc))
    return answer


@dataclass
class PollResults:
    """What one poll found, not yet written: synced case -> ticket id, failed case -> error,
    and how many jobs finished."""

    synced: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    finished: int = 0


class Poller:
    def __init__(
        self,
        sink: Sink,
        resolve: Resolve,
        plan: PollPlan,
        *,
        monotonic: Monotonic,
        job_timeout: float,
        crash_hook: CrashHook,
        executor_factory: ExecutorFactory = thread_pool,
    ) -> None:
        self.sink = sink
        self.resolve = resolve
        self.plan = plan
        self.monotonic = monotonic
        self.job_timeout = job_timeout
        self.crash_hook = crash_hook
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
        self.jobs: dict[str, tuple[Batch, float]] = {}  # job id -> (batch, when it started)
        self._polling: Polling | None = None

    def add(self, job_id: str, batch: Batch, answered: float) -> None:
        """A job Zendesk accepted (its POST answered at ``answered``): in flight now."""
        self.jobs[job_id] = (batch, self.monotonic())
        self.plan.job_answered(job_id, answered)

    def cases_out(self) -> int:
        return sum(len(batch.case_ids) for batch, _ in self.jobs.values())

    @property
    def polling(self) -> bool:
        """A poll is out."""
        return self._polling is not None

    def answered(self) -> bool:
        """The poll out has its answer (``finish`` would not wait)."""
        return self._polling is not None and self._polling.future.done()

    def wait(self, budget: Budget, *, draining: bool = False) -> float:
        """Seconds until the jobs in flight are due a poll."""
        return self.plan.wait(self.jobs, budget=budget, draining=draining)

    def due(self, budget: Budget) -> bool:
        """A poll may start: jobs in flight, none out, and due."""
        return bool(self.jobs) and self._polling is None and self.wait(budget) <= 0

    def start(self) -> None:
        """Send one show_many for every job in flight (and check the results of those found
        finished)."""
        assert self._polling is None, "one poll at a time"
        # A copy: the poller thread never reads ``jobs``, which this thread changes.
        polled = {job_id: batch.case_ids for job_id, (batch, _) in self.jobs.items()}
        sent = self.plan.poll_sent()
        if self._executor is None:
            self._executor = self._executor_factory(1, "snapzen-poll")
        future = self._executor.submit(poll_jobs, self.sink, self.monotonic, polled)
        self._polling = Polling(future, list(polled), sent)

    def finish(self) -> PollResults:
        """The answer of the poll out (waiting for it): finished jobs whose tickets were read
        back leave the slots and their results are returned; a job still queued (or not read
        back) after ``job_timeout`` is let go, left 'pushing' with its job id for the next run
        (Zendesk keeps job statuses for hours)."""
        polling = self._polling
        assert polling is not None, "no poll is out"
        self._polling = None
        answer = polling.future.result()
        left = self.plan.poll_answered(polling.sent, answer.answered)
        # Every job this poll found finished is recorded in one transaction by the caller: a
        # crash before it leaves them all 'pushing' with their job ids, which recovery
        # re-reads, exactly as for a crash before any single job's record.
        results = PollResults()
        for job_id in polling.polled:
            if job_id not in self.jobs:
                continue
            batch, started = self.jobs[job_id]
            checked = answer.checked.get(job_id)
            if checked is not None:
                self.crash_hook("after_job")
                self.plan.job_finished(job_id, left)
                synced, failures = self.resolve(answer.statuses[job_id], checked)
                results.synced.update(synced)
                results.failures.update(failures)
                del self.jobs[job_id]
                results.finished += 1
            elif self.monotonic() - started > self.job_timeout:
                log.error("job_timeout", job_id=job_id, batch_id=batch.batch_id)
                del self.jobs[job_id]
                self.plan.forget(job_id)
        log.debug(
            "jobs_polled",
            polled=len(answer.statuses),
            finished=results.finished,
            in_flight=len(self.jobs),
        )
        return results

    def close(self) -> None:
        """Stop the poller. A poll still out (an error or a stop ended the pass) is waited
        for and not applied: its jobs stay 'pushing' with their ids, for recovery."""
        if self._polling is not None:
            with contextlib.suppress(Exception):
                self._polling.future.result()
            self._polling = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
