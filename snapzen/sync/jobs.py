"""Poll: the import jobs in flight, when to poll them, and what a poll found.

Every poll asks about every job in flight in one ``job_statuses`` call, on the pass's thread.
Polls are timed to when jobs can finish (issue 25), never on a fixed cadence:

- A job can first be done ``duration`` after its POST was answered: the shortest wait after
  which a poll found one of the last jobs finished. Until a job has finished, the guess is
  ``zendesk.job_poll_seconds``, doubled past the oldest job's age by each poll that finds it
  still running (a poll at 1, 2, 4, 8 s, not one a second; a pass with free slots does not
  poll while it fetches, so its first poll, when the cap is full, may be the 8 s one).
- The pass polls when the oldest job can be done if it needs a slot (every slot is taken),
  or, when more can be done within ``GAP`` x ``duration`` after it, when the ``SHARE``-th
  part of the jobs in flight can be (the 6th oldest of 30): one poll frees several slots,
  their batches go out together, and those jobs end together a job time later, so each poll
  finds several done (fewer polls) and a freed slot waits little for the poll that shows
  it. Otherwise it polls when the newest job can be done (one poll finds them all done).
- Never sooner than ``GAP`` x ``duration`` after the previous poll, and a job found still
  running at its time is looked at again only after as long as it is late (at least that
  gap): never a busy poll.
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
# A poll for a slot waits for up to this share of the jobs in flight (1/5: 6 of 30) when they
# can be done within ``GAP`` x ``duration`` of the oldest: each poll frees several slots.
SHARE = 5
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
        self.took: deque[float] = deque(maxlen=RECENT)  # POST answered -> found finished
        self.last_poll = -math.inf
        self.polls = 0

    def add(self, job_id: str, batch: Batch, answered: float | None = None) -> None:
        """A job Zendesk accepted, its POST answered at ``answered`` (now if None): in flight."""
        at = self.monotonic() if answered is None else answered
        self.flying[job_id] = InFlight(batch, at, at)

    def duration(self) -> float:
        """How long after its POST's answer a job can first be done (learned, or the guess)."""
        return min(self.took) if self.took else self.guess

    def due(self, job: InFlight) -> float:
        return max(job.not_before, job.answered + self.duration())

    def poll_at(self, *, slots: int) -> float | None:
        """When to poll next (monotonic seconds) for a pass that needs ``slots`` free slots
        (0: it has nothing to send); None when no job is in flight. Until a job has finished,
        at the oldest burst's time whatever the slots."""
        if not self.flying:
            return None
        gap = GAP * self.duration()
        dues = sorted(self.due(job) for job in self.flying.values())
        if slots or not self.took:
            burst = [due for due in dues if due <= dues[0] + gap]
            at = burst[: max(1, min(slots or len(dues), len(dues) // SHARE))][-1]
        else:  # the jobs due well before the newest, if half or more, recorded while it runs
            early = [due for due in dues if due < dues[-1] - gap]
            at = early[-1] if 2 * len(early) >= len(dues) else dues[-1]
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
                    self.took.append(sent - job.answered)
                    del self.flying[job_id]
                    oldest_running = False
                    continue
            if sent - job.answered > self.job_timeout:
                log.error("job_timeout", job_id=job_id, batch_id=job.batch.batch_id)
                del self.flying[job_id]
            elif sent >= self.due(job) and (self.took or self.guess >= self.max_wait):
                late = sent - job.answered - (min(self.took) if self.took else 0.0)
                job.not_before = sent + min(max(late, GAP * self.duration()), self.max_wait)
        if oldest_running and not self.took and self.flying:
            # None finished yet: look again at the next doubling past the oldest's age.
            age = sent - next(iter(self.flying.values())).answered
            while self.guess <= age and self.guess < self.max_wait:
                self.guess = min(2 * self.guess, self.max_wait)
        log.debug("jobs_polled", finished=found.finished, in_flight=len(self.flying))
        return found
