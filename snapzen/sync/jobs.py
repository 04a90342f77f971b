"""Poll: the import jobs in flight, when a job's slot is free again, when to poll them, and
what a poll found.

Every poll asks about every job in flight in one ``job_statuses`` call, on the pass's thread.
Zendesk's job cap, not the polls, sets the pace (issue 25), so a poll is not what frees a slot:

- A job can first be done ``duration`` after its POST was answered: the shortest time from a
  POST *sent* to a poll that found its job done (an upper bound on any job's run, whatever the
  latency). Until a job has finished, the guess is ``zendesk.job_poll_seconds``, doubled by
  each poll that finds the oldest job still running (a poll at 1, 2, 4, 8 s).
- Once a duration is learned, a job stops holding a slot at its time plus ``margin``
  (``running``): the pass sends the next batch then, with no poll. A job found still running at
  its time is looked at again after as long as it is late (at least ``GAP`` x ``duration``),
  and holds its slot until then; each time Zendesk finds its cap full (``cap_was_full``) the
  margin grows (``GAP`` x ``duration``, then doubling), so varying job times cost a few
  refused POSTs, not one a slot.
- Polls are for the results: while batches are left to send, once a cap's worth of jobs can be
  done (one poll records them all); with none left, when the newest can be done, after one
  poll for those due well before it (recorded while it runs). Never sooner than ``GAP`` x
  ``duration`` after the previous poll: never a busy poll.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from snapzen.policy.models import JobStatus
from snapzen.support.errors import RetriableError, RetriesExhausted
from snapzen.support.log import get_logger, one_line
from snapzen.sync.contracts import Batch, CrashHook, Monotonic, Sink

log = get_logger("snapzen.sync.jobs")

# The least time between two polls, as a share of the job duration (1 s for 8 s jobs).
GAP = 0.125
# How many of the last finished jobs the duration is taken from (one job cap's worth): one
# quick job (a retry sent alone) stops shortening the polls' timing after as many more.
RECENT = 30
# A wait that grows (the guess doubling, a late job's back-off) grows to at most this many
# times ``zendesk.job_poll_seconds`` (16 s by default): a job queued for minutes is still
# looked at every 16 s.
MAX_BACKOFF = 16
# A finished job whose results must be read back (an answer in doubt) and whose read-back
# failed with these (the client already retried) stays in flight for the next poll; any
# other error fails the pass and its jobs stay 'pushing' for recovery.
READ_BACK_LATER = (RetriableError, RetriesExhausted)

# A finished job's results mapped to cases: (synced case -> ticket id, failed case -> error).
Resolve = Callable[[Sequence[str], JobStatus], tuple[dict[str, int], dict[str, str]]]


@dataclass
class InFlight:
    batch: Batch
    answered: float  # when its POST was answered (monotonic)
    sent: float  # when its POST was sent
    not_before: float  # not polled for before this (a job found running at its time)


@dataclass
class Found:
    """What one poll found, not yet written: synced case -> ticket id, failed case -> error,
    and how many jobs finished."""

    synced: dict[str, int]
    failures: dict[str, str]
    finished: int = 0


class Jobs:
    def __init__(
        self,
        sink: Sink,
        resolve: Resolve,
        *,
        first_guess: float,
        job_timeout: float,
        monotonic: Monotonic,
        crash_hook: CrashHook,
    ) -> None:
        self.sink, self.resolve = sink, resolve
        self.guess, self.job_timeout = first_guess, job_timeout
        self.max_wait = MAX_BACKOFF * first_guess
        self.monotonic, self.crash_hook = monotonic, crash_hook
        self.flying: dict[str, InFlight] = {}  # job id -> its batch and timing, oldest first
        self.took: deque[float] = deque(maxlen=RECENT)  # POST sent -> found finished
        self.last_poll = -math.inf
        self.margin = 0.0  # added to a job's time before its slot is taken to be free
        self.polls = 0

    def add(
        self, job_id: str, batch: Batch, sent: float | None = None, answered: float | None = None
    ) -> None:
        """A job Zendesk accepted, its POST sent at ``sent`` and answered at ``answered`` (both
        now if not given): in flight."""
        at = self.monotonic() if answered is None else answered
        self.flying[job_id] = InFlight(batch, at, at if sent is None else sent, at)

    def running(self) -> int:
        """Jobs that may still hold a slot: every one until a duration is learned, then those
        not yet at their time."""
        at = self.monotonic() - self.margin
        return sum(not self.took or self.due(job) > at for job in self.flying.values())

    def free_at(self) -> float:
        """When the next slot is free again without a poll (infinity: only a poll frees one)."""
        now, frees = self.monotonic(), (self.due(job) + self.margin for job in self.flying.values())
        return min((at for at in frees if at > now), default=math.inf) if self.took else math.inf

    def cap_was_full(self) -> None:
        """Zendesk refused a POST for its job cap: a slot taken to be free was not."""
        self.margin = min(max(2 * self.margin, GAP * self.duration()), self.max_wait)

    def duration(self) -> float:
        """How long after its POST's answer a job can first be done (learned, or the guess)."""
        return min(self.took) if self.took else self.guess

    def due(self, job: InFlight) -> float:
        return max(job.not_before, job.answered + self.duration())

    def poll_at(self, *, wait_for: int = 0) -> float | None:
        """When to poll next (monotonic seconds); None when no job is in flight. Until a job
        has finished, at the oldest job's time; then when the ``wait_for`` oldest jobs can be
        done, or with 0 (nothing left to send) when the newest can be, after one poll for the
        jobs due more than the gap before it."""
        if not self.flying:
            return None
        dues, gap = sorted(self.due(job) for job in self.flying.values()), GAP * self.duration()
        at = dues[0] if not self.took else dues[min(wait_for or len(dues), len(dues)) - 1]
        if self.took and not wait_for:  # first the jobs due well before the newest, if any
            at = max((due for due in dues if due <= at - gap), default=at)
        return max(at, self.last_poll + gap)

    def poll(self) -> Found:
        """One ``job_statuses`` for every job in flight. Finished jobs leave (their results
        mapped to cases, reading back only an answer in doubt); one running longer than
        ``job_timeout`` is let go, left 'pushing' with its job id for the next run's recovery
        (Zendesk keeps job statuses for hours). Every job found finished is written in one
        transaction by the caller: a crash before it leaves them 'pushing' with their job ids,
        which recovery re-reads."""
        sent = self.last_poll = self.monotonic()
        self.polls += 1
        statuses = self.sink.job_statuses(list(self.flying))
        found = Found({}, {})
        oldest_running = True
        for job_id, job in list(self.flying.items()):
            status = statuses.get(job_id)
            if status is not None and status.finished:
                try:
                    synced, failures = self.resolve(job.batch.case_ids, status)
                except READ_BACK_LATER as exc:
                    log.warning("job_read_back_failed", job_id=job_id, error=one_line(exc))
                else:
                    self.crash_hook("after_job")
                    found.synced.update(synced)
                    found.failures.update(failures)
                    found.finished += 1
                    self.took.append(sent - job.sent)
                    del self.flying[job_id]
                    oldest_running = False
                    continue
            if sent - job.answered > self.job_timeout:
                log.error("job_timeout", job_id=job_id, batch_id=job.batch.batch_id)
                del self.flying[job_id]
            elif sent >= self.due(job):
                late = sent - job.answered - (min(self.took) if self.took else 0.0)
                job.not_before = sent + min(max(late, GAP * self.duration()), self.max_wait)
        if oldest_running and not self.took and self.flying:
            self.guess = min(2 * self.guess, self.max_wait)  # none finished yet: look later
        log.debug("jobs_polled", finished=found.finished, in_flight=len(self.flying))
        return found
