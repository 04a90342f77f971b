"""When to poll the import jobs in flight: pure timing, no threads, no I/O.

Polling less often saves rate-limit budget for imports; polling when a job is due, rather
than on the ``job_poll_seconds`` cadence, frees its slot sooner. One rule decides between the
two (``PollPlan.wait``): a job is polled when it is due while the rate window can pay for the
poll (``budget``: requests left beyond the imports still to send and the cadence's own polls),
and otherwise on the cadence, except that a pass waiting only for its
last job polls once when that one is due. Early polls are never closer together than
``Tuning.early_poll_gap`` x the cadence.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Literal

from snapzen.sync.contracts import Monotonic

Budget = Literal["spare", "short", "unknown"]


# Zendesk's rate limits are per minute. The job_poll_seconds cadence spends up to
# RATE_WINDOW_SECONDS / job_poll_seconds requests of each window whatever the budget says.
RATE_WINDOW_SECONDS = 60.0


def budget(spare: int | None, unsent_cases: int, batch_size: int, cadence: float) -> Budget:
    """Can the rate window pay for early polls? "spare" when it has more requests left
    (``spare``) than the imports still to send (``unsent_cases`` in batches) plus the polls the
    ``cadence`` makes in a window anyway; "short" when it has not: an early poll would then take
    an import's place and push it past the reset (at 100,000 chats ~150 early polls in the first
    window cost ~3 s, bench/RESULTS.md v8; without the cadence's share, ~50 more polls than
    before and ~5-10 s, v9); "unknown" before Zendesk's rate-limit headers were seen."""
    if spare is None:
        return "unknown"
    imports = -(-max(0, unsent_cases) // batch_size)
    cadence_polls = math.ceil(RATE_WINDOW_SECONDS / cadence)
    return "spare" if spare > imports + cadence_polls else "short"


class PollPlan:
    """The timing state of one pass's polls, on an injected monotonic clock.

    It learns how long a job takes, as the shortest "POST answered -> a poll *sent* that
    found it finished" so far (timed from the poll's sending, not its answer, the next early
    poll reaches Zendesk as the job ends instead of one round trip later: ~50 ms a job slot,
    bench/RESULTS.md v8)."""

    def __init__(self, cadence: float, early_gap: float, monotonic: Monotonic) -> None:
        self.cadence = cadence
        self.min_gap = cadence * early_gap
        self._now = monotonic
        self.next_regular: float | None = None  # the cadence's next poll
        self.last_poll = float("-inf")  # when the last poll was sent
        self.answered_at: dict[str, float] = {}  # job id -> when its POST was answered
        self.job_seconds: float | None = None
        self.round_trip = float("inf")  # the shortest poll round trip so far

    def job_answered(self, job_id: str, at: float) -> None:
        """A job's POST was answered at ``at``: it is in flight from now."""
        self.answered_at[job_id] = at
        if self.next_regular is None:
            self.next_regular = self._now() + self.cadence

    def forget(self, job_id: str) -> None:
        self.answered_at.pop(job_id, None)

    def wait(self, jobs: Collection[str], *, budget: Budget, draining: bool = False) -> float:
        """Seconds until ``jobs`` (those in flight) are due a poll. ``draining``: nothing is
        left to submit, so the last job ends the pass."""
        now = self._now()
        if self.next_regular is None:
            self.next_regular = now + self.cadence
        answered = [self.answered_at[j] for j in jobs if j in self.answered_at]
        waiting_for: str | None = None
        if budget != "short":
            waiting_for = "first"  # each job polled as it comes due
        elif draining:
            waiting_for = "last"
        at = next_poll_at(
            regular=self.next_regular,
            last_poll=self.last_poll,
            job_seconds=self.job_seconds,
            answered=answered if len(answered) == len(jobs) else None,
            waiting_for=waiting_for,
            min_gap=self.min_gap,
        )
        return max(0.0, at - now)

    def poll_sent(self) -> float:
        """A poll leaves now: the cadence restarts from it. Returns now."""
        now = self._now()
        self.next_regular = now + self.cadence
        self.last_poll = now
        return now

    def poll_answered(self, sent: float, answered: float) -> float:
        """When a poll handed over at ``sent`` and answered at ``answered`` left: at ``sent``
        unless it waited (the pacer, a retry's backoff) and left later. Its shortest round trip
        so far bounds that: a later departure would make jobs look shorter than they are."""
        self.round_trip = min(self.round_trip, answered - sent)
        return max(sent, answered - self.round_trip)

    def job_finished(self, job_id: str, poll_left: float) -> None:
        """A poll that left at ``poll_left`` found the job finished."""
        answered = self.answered_at.pop(job_id, None)
        if answered is not None:
            took = poll_left - answered
            self.job_seconds = took if self.job_seconds is None else min(self.job_seconds, took)


def next_poll_at(
    *,
    regular: float,
    last_poll: float,
    job_seconds: float | None,
    answered: Sequence[float] | None,
    waiting_for: str | None,
    min_gap: float,
) -> float:
    """When to poll the jobs in flight next (monotonic seconds).

    ``regular`` is the ``job_poll_seconds`` cadence; polling less often saves rate-limit
    budget for imports. When the pass is waiting for a job (``waiting_for`` "first": every
    slot is taken, so the first job to finish frees one; "last": nothing is left to submit,
    so the last job ends the pass), the cadence alone loses up to one interval each time:
    at 10,000 chats the pass sat idle ~2.5 s at the 25-job cap waiting for 1 s polls
    (bench/RESULTS.md, v6). Then the poll is due when that job is: its POST's answer
    (``answered``) plus ``job_seconds``, the shortest "POST answered -> a poll sent that
    found it finished" so far. A job polled after it was due and still running is late: it
    is polled again after as long as it is already late (at least ``min_gap``). Never sooner
    than ``min_gap`` after the last poll, so early polls spend at most 1/min_gap requests a
    second, and never later than the cadence.
    """
    if waiting_for is None or job_seconds is None or not answered:
        return regular
    answer = max(answered) if waiting_for == "last" else min(answered)
    due = answer + job_seconds
    earliest = last_poll + min_gap
    if due <= last_poll:
        # Already polled after it was due: it is late. Look again after as long again as
        # it is late (at least min_gap): a job much slower than the fastest seen, or an
        # estimate from one quick job, backs off to the cadence within a few polls instead
        # of polling every min_gap.
        due = last_poll + max(min_gap, last_poll - due)
    return min(regular, max(due, earliest))
