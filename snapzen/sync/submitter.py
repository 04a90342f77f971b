"""Submitting batches: the intent is committed on the pass's thread, then the create_many
POST (HTTP only) is handed to a submit worker, so the next batch is prepared while up to
``zendesk.max_concurrent_posts`` POSTs are out. Answers are taken back on the pass's thread,
oldest first (``next_answer``), where the pass decides what each one means.

Threads are made by ``executor_factory``; a test passes an inline executor and drives the
part without any.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TypeVar

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.policy.models import JobStatus
from snapzen.support.errors import SnapzenError
from snapzen.sync.batches import FilledBatch
from snapzen.sync.contracts import (
    Batch,
    Clock,
    Counts,
    CrashHook,
    ExecutorFactory,
    Monotonic,
    Sink,
    Ticket,
    thread_pool,
)

_Arg = TypeVar("_Arg")
_Answer = TypeVar("_Answer")


def timed(
    monotonic: Monotonic, call: Callable[[_Arg], _Answer], arg: _Arg
) -> tuple[_Answer, float]:
    """Run on a worker thread: the request, and when its answer came."""
    answer = call(arg)
    return answer, monotonic()


@dataclass
class Posting:
    """A POST handed to a submit worker: its batch (already 'pushing'), ticket count, the
    answer to come (job status, when it came) and when it was handed over."""

    batch: Batch
    count: int
    future: Future[tuple[JobStatus, float]]
    sent: float


@dataclass
class Answer:
    """A POST's outcome: its job (and when it was answered), or the error it ended in."""

    posting: Posting
    job: JobStatus | None = None
    answered: float = 0.0
    error: SnapzenError | None = None


class Submitter:
    def __init__(
        self,
        db: sqlite_utils.Database,
        sink: Sink,
        counts: Counts,
        *,
        clock: Clock,
        monotonic: Monotonic,
        run_id: str,
        crash_hook: CrashHook,
        max_posts: int,
        executor_factory: ExecutorFactory = thread_pool,
    ) -> None:
        self.db = db
        self.sink = sink
        self.counts = counts
        self.clock = clock
        self.monotonic = monotonic
        self.run_id = run_id
        self.crash_hook = crash_hook
        self.max_posts = max(1, max_posts)
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
        self._posting: deque[Posting] = deque()  # oldest first

    @property
    def outstanding(self) -> int:
        """POSTs handed over and not yet taken back."""
        return len(self._posting)

    @property
    def full(self) -> bool:
        return len(self._posting) >= self.max_posts

    def cases_out(self) -> int:
        return sum(posting.count for posting in self._posting)

    def post(self, filled: FilledBatch) -> None:
        """Write the intent ('pushing', committed), then hand the POST over."""
        assert not self.full, "too many POSTs outstanding"
        batch = filled.batch
        outbox.mark_pushing(self.db, batch.batch_id, filled.drafts, self.clock(), self.run_id)
        self.counts.batches += 1
        self.crash_hook("before_post")
        if self._executor is None:
            self._executor = self._executor_factory(self.max_posts, "snapzen-submit")
        future = self._executor.submit(timed, self.monotonic, self._send, filled.tickets)
        self._posting.append(Posting(batch, len(filled.tickets), future, self.monotonic()))

    def _send(self, tickets: Sequence[Ticket]) -> JobStatus:
        return self.sink.submit_import(tickets)

    def answered(self) -> bool:
        """The oldest POST's answer is in (``next_answer`` would not wait)."""
        return bool(self._posting) and self._posting[0].future.done()

    def next_answer(self) -> Answer | None:
        """The oldest POST's outcome, waiting for it; None when none is out. Errors other
        than snapzen's own (a bug, Ctrl-C) propagate."""
        if not self._posting:
            return None
        posting = self._posting.popleft()
        try:
            job, answered = posting.future.result()
        except SnapzenError as exc:
            return Answer(posting, error=exc)
        return Answer(posting, job=job, answered=answered)

    def abandon(self) -> None:
        """POSTs not to be taken back (Ctrl-C, a crash, a failure): their batches stay
        'pushing' without job ids, for recovery, as if the process had died. Waits for the
        requests to end, so none of the pass is in progress when it returns."""
        for posting in self._posting:
            with contextlib.suppress(Exception):
                posting.future.result()
        self._posting.clear()

    def shut_down(self) -> None:
        """Stop the submit workers once nothing is outstanding (started again on need)."""
        if self._executor is not None and not self._posting:
            self._executor.shutdown(wait=True)
            self._executor = None
