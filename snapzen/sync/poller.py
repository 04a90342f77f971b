"""The import jobs in flight, and polling them: one show_many for every job at a time, sent on
the poller thread (HTTP only) while the pass stages, prepares and posts; its answer is
taken back on the pass's thread (``finish``), which writes the results. When to poll is
``poll_plan``'s rule.

Threads are made by ``executor_factory``; a test passes an inline executor and drives the
part without any.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from snapzen.policy.models import JobStatus
from snapzen.support.log import get_logger
from snapzen.sync.contracts import Batch, CrashHook, Monotonic, Sink
from snapzen.sync.poll_plan import Budget, PollPlan
from snapzen.sync.submitter import ExecutorFactory, thread_pool, timed

log = get_logger("snapzen.sync.poller")

# A finished job's results mapped back to cases (``Recorder.resolve_job``).
Resolve = Callable[[Sequence[str], JobStatus], tuple[dict[str, int], dict[str, str]]]


@dataclass
class Polling:
    """A show_many out on the poller thread: its answer (statuses, when it came), the jobs it
    asked about, and when it was handed over."""

    future: Future[tuple[dict[str, JobStatus], float]]
    polled: list[str]
    sent: float


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
        """Send one show_many for every job in flight."""
        assert self._polling is None, "one poll at a time"
        polled = list(self.jobs)
        sent = self.plan.poll_sent()
        if self._executor is None:
            self._executor = self._executor_factory(1, "snapzen-poll")
        future = self._executor.submit(timed, self.monotonic, self.sink.job_statuses, polled)
        self._polling = Polling(future, polled, sent)

    def finish(self) -> PollResults:
        """The answer of the poll out (waiting for it): finished jobs leave the slots and their
        results are returned; a job still queued after ``job_timeout`` is let go, left
        'pushing' with its job id for the next run (Zendesk keeps job statuses for hours)."""
        polling = self._polling
        assert polling is not None, "no poll is out"
        self._polling = None
        statuses, answered = polling.future.result()
        left = self.plan.poll_answered(polling.sent, answered)
        # Every job this poll found finished is recorded in one transaction by the caller: a
        # crash before it leaves them all 'pushing' with their job ids, which recovery
        # re-reads, exactly as for a crash before any single job's record.
        results = PollResults()
        for job_id in polling.polled:
            if job_id not in self.jobs:
                continue
            batch, started = self.jobs[job_id]
            status = statuses.get(job_id)
            if status is not None and status.finished:
                self.crash_hook("after_job")
                self.plan.job_finished(job_id, left)
                synced, failures = self.resolve(batch.case_ids, status)
                results.synced.update(synced)
                results.failures.update(failures)
                del self.jobs[job_id]
                results.finished += 1
            elif self.monotonic() - started > self.job_timeout:
                log.error("job_timeout", job_id=job_id, batch_id=batch.batch_id)
                del self.jobs[job_id]
                self.plan.forget(job_id)
        log.debug(
            "jobs_polled", polled=len(statuses), finished=results.finished, in_flight=len(self.jobs)
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
