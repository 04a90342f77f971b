"""Pushing: filling job slots with batches, taking back the POSTs' answers, polling the jobs.
Part of the pass (``pipeline``), split out so each reads on its own: ``pipeline`` holds the
phases, this holds the submit/poll step they repeat and the error policy for POST answers
(``collect_one``). Everything here runs on the pass's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.support.errors import (
    AmbiguousWriteError,
    BadRequestError,
    InvalidRecordError,
    TooManyJobsError,
)
from snapzen.support.log import get_logger, one_line
from snapzen.support.settings import ZendeskSettings
from snapzen.sync.batches import next_batch
from snapzen.sync.contracts import Clock, Counts, CrashHook, Monotonic, Sink
from snapzen.sync.poll_plan import Budget
from snapzen.sync.poll_plan import budget as rate_budget
from snapzen.sync.poller import Poller
from snapzen.sync.prepared import PreparedCases
from snapzen.sync.results import Recorder
from snapzen.sync.submitter import Submitter

log = get_logger("snapzen.sync.pushing")


class Pusher:
    def __init__(
        self,
        zendesk: ZendeskSettings,
        db: sqlite_utils.Database,
        sink: Sink,
        counts: Counts,
        parts: tuple[PreparedCases, Recorder, Submitter, Poller],
        *,
        clock: Clock,
        monotonic: Monotonic,
        crash_hook: CrashHook,
        stopping: Callable[[], bool],
        settled_before: Callable[[], datetime],
        still_to_come: Callable[[], int],
    ) -> None:
        self.zendesk, self.db, self.sink, self.counts = zendesk, db, sink, counts
        self.cases, self.recorder, self.submitter, self.poller = parts
        self.clock, self.monotonic, self.crash_hook = clock, monotonic, crash_hook
        self.stopping, self.settled_before, self.still_to_come = (
            stopping,
            settled_before,
            still_to_come,
        )
        # After Zendesk answered TooManyJobs: no new POST before this (monotonic) time; reset
        # when one of our jobs finishes.
        self.job_cap_until = 0.0

    def fill(self, *, full_only: bool) -> None:
        """Submit batches while a job slot is free; with ``full_only`` (fetch still running)
        only while two batches' worth are ready, so pushing early never splits what would
        have been one full batch. Per batch the writes keep their order: terminal outcomes,
        intent ('pushing'), POST, job id. A poll falling due meanwhile is made between POSTs."""
        size = self.zendesk.batch_size
        while not self.slots_taken():
            if self.stopping() or self.monotonic() < self.job_cap_until:
                return
            if self.rate_paused() > 0:
                return
            if full_only and self.ready_count(2 * size) < 2 * size:
                return
            filled = next_batch(self.cases, self.recorder, size)
            if filled is None:
                return
            self.collect_done()
            while self.submitter.full:
                self.collect_one()  # the oldest: its answer is due first
            self.submitter.post(filled)
            self.poll_step(refill=None)

    # ------------------------------------------------------------ POST answers: the error policy

    def collect(self) -> None:
        """Take every outstanding POST's answer, oldest first."""
        while self.submitter.outstanding:
            self.collect_one()

    def collect_done(self) -> None:
        """Take the answers already in, oldest first, without waiting."""
        while self.submitter.answered():
            self.collect_one()

    def collect_one(self) -> None:
        """The oldest POST's answer: job id stored and the job in flight; ambiguous -> left
        'pushing' for recovery; refused as invalid -> its cases failed (they retry alone);
        the job cap full -> back to pending, no POST until a job of ours ends; anything else
        -> back to pending, and the error ends the pass."""
        answer = self.submitter.next_answer()
        if answer is None:
            return
        batch, exc = answer.posting.batch, answer.error
        if isinstance(exc, AmbiguousWriteError):
            # The POST may have created the job: recovery looks the tickets up by external_id
            # after the grace period.
            self.counts.ambiguous += len(batch.case_ids)
            log.warning(
                "import_ambiguous",
                batch_id=batch.batch_id,
                cases=len(batch.case_ids),
                error=one_line(exc),
            )
            return
        if isinstance(exc, InvalidRecordError | BadRequestError):
            # Zendesk refused the whole request (400/413/422) and did not act. Failing the
            # batch keeps one bad ticket from blocking every run; the cases retry one by one.
            error = one_line(f"Zendesk refused the batch: {exc}")
            self.recorder.failed(dict.fromkeys(batch.case_ids, error))
            log.warning(
                "import_refused",
                batch_id=batch.batch_id,
                cases=len(batch.case_ids),
                error=one_line(exc),
            )
            return
        if exc is not None:
            # Refused outright (job cap, auth, other 4xx, 429 budget spent): Zendesk did not
            # act, so the cases can go out again at once rather than wait for a lookup.
            outbox.back_to_pending(self.db, batch.case_ids, self.clock())
            if not _is_job_cap(exc):
                raise exc
            # Zendesk's 30-job cap is full (other integrations share it): not an outage. Try
            # again after a poll interval, or sooner when one of our jobs finishes.
            self.job_cap_until = self.monotonic() + self.zendesk.job_poll_seconds
            log.warning("job_cap_reached", batch_id=batch.batch_id, in_flight=len(self.poller.jobs))
            return
        job = answer.job
        assert job is not None, "an answer without an error has a job"
        self.crash_hook("after_post")
        outbox.set_job_id(self.db, batch.batch_id, job.id)
        self.crash_hook("after_job_id")
        log.info(
            "import_submitted",
            batch_id=batch.batch_id,
            job_id=job.id,
            tickets=answer.posting.count,
            post_seconds=round(answer.answered - answer.posting.sent, 3),
        )
        self.poller.add(job.id, batch, answer.answered)

    # ------------------------------------------------------------ polling

    def poll(self, *, refill: bool | None = None) -> None:
        """Poll the jobs in flight (or take the poll already out) and record what finished."""
        if not self.poller.polling:
            self._start_poll()
        self._finish_poll(refill=refill)

    def poll_step(self, *, refill: bool | None) -> None:
        """Between other work: apply the poll's answer if it came, start one if due."""
        if self.poller.answered():
            self._finish_poll(refill=refill)
        if self.poll_due():
            self._start_poll()

    def poll_due(self) -> bool:
        # Not while the rate budget is spent: the poll would only wait in the pacer.
        return self.poller.due(self.budget()) and self.rate_paused() <= 0

    def _start_poll(self) -> None:
        self.collect_done()  # answered POSTs join this poll
        self.poller.start()

    def _finish_poll(self, *, refill: bool | None) -> None:
        """Apply the poll's answer. With ``refill`` (``fill``'s ``full_only``) the freed
        slots are filled before the results are written: writing ~1,000 synced cases takes
        long enough that the next POSTs' latency should overlap it. A crash in between leaves
        those jobs 'pushing' with their job ids; recovery re-reads them."""
        found = self.poller.finish()
        if found.finished:
            self.job_cap_until = 0.0  # one of ours finished: a slot is free again
        try:
            if refill is not None and (found.synced or found.failures):
                self.fill(full_only=refill)
        finally:
            self.recorder.results(found.synced, found.failures)  # Zendesk's facts: written

    # ------------------------------------------------------------ state

    def budget(self) -> Budget:
        """Whether the rate window can pay for early polls, counting the imports still to
        send: cases fetched and not sent, and those the fetch has yet to bring (at 100,000
        chats the fetched-but-unsent were never more than a few batches, so without the
        estimate the first window looked affordable and its early polls displaced ~150
        imports past its reset)."""
        unsent = self.counts.unsent() - self.poller.cases_out() - self.submitter.cases_out()
        unsent += self.still_to_come()
        zd = self.zendesk
        return rate_budget(self.sink.spare_requests(), unsent, zd.batch_size, zd.job_poll_seconds)

    def rate_paused(self) -> float:
        """Seconds until Zendesk's rate budget allows the next request (0: now). While it is
        spent nothing is handed to a submit worker (it would sleep in the pacer): the pass
        stages instead (at 100,000 chats, 11 s per spent window, bench/RESULTS.md v6)."""
        return self.sink.submit_delay()

    def slots_taken(self) -> bool:
        jobs = len(self.poller.jobs) + self.submitter.outstanding
        return jobs >= self.zendesk.max_jobs_in_flight

    def ready_count(self, limit: int) -> int:
        return outbox.count_ready(self.db, self.settled_before(), limit)

    def ready_left(self) -> bool:
        return self.ready_count(1) > 0

    def close(self, *, collect: bool = True) -> None:
        """End of a pass, however it ended: record the answer of a POST still out (its job id
        stored rather than left to the lookup), then stop the workers. Not ``collect``
        (Ctrl-C, a crash): outstanding POSTs are left to recovery, as if the process died."""
        try:
            while collect and self.submitter.outstanding:
                try:
                    self.collect_one()
                except Exception as exc:  # the pass is already failing: keep its own error
                    log.warning("close_collect_failed", error=one_line(exc))
                    break
        finally:
            self.submitter.abandon()
            try:
                self.submitter.shut_down()
                self.cases.drop()
            finally:
                self.poller.close()


def _is_job_cap(exc: BaseException) -> bool:
    """TooManyJobs itself, or the retry budget spent on it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TooManyJobsError):
            return True
        seen = seen.__cause__
    return False
