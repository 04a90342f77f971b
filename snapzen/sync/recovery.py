"""Recovery, at the start of every pass: finish the batches a crash, a stop or an ambiguous
POST left 'pushing'. Runs on the pass's thread before any POST of the pass, so it never races
one of its own submits.

A batch with a job id: the job is read again (Zendesk keeps job statuses for hours) and its
results recorded, or, while it still runs, handed to the pass, which polls it with its own
(a backfill's slice hands its last jobs to the next slice this way). Without a job id, or
one Zendesk does not show, the job may still be queued: only after
``recovery_grace_seconds`` (or at once when Zendesk lists no unfinished import job) are its
tickets looked up by external id; found ones are recorded, the rest go back to pending and
are sent again. This is why a crash anywhere between the intent and the ledger row never
loses or duplicates a chat
(docs/architecture.md, "Exactly once").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from snapzen.ledger.store import outbox
from snapzen.support.log import get_logger
from snapzen.sync.results import Recorder
from snapzen.sync.results_check import lookup_is_conclusive

log = get_logger("snapzen.sync.recovery")


class Recovery:
    """Through the pass's ``Recorder`` (its ledger, Zendesk, counts and clock)."""

    def __init__(self, recorder: Recorder, *, grace_seconds: float) -> None:
        self.recorder = recorder
        self.db, self.sink, self.counts = recorder.db, recorder.sink, recorder.counts
        self.grace = timedelta(seconds=grace_seconds)

    def run(self) -> list[outbox.PushingBatch]:
        """Settle every batch left 'pushing' that can be settled now (their jobs read in one
        ``job_statuses``); returns those whose jobs still run, for the pass to poll."""
        now = self.recorder.clock()
        conclusive: list[bool] = []  # asked once per pass, when first needed
        batches, running = outbox.pushing_batches(self.db), []
        jobs = [batch.job_id for batch in batches if batch.job_id]
        statuses = self.sink.job_statuses(jobs) if jobs else {}
        for batch in batches:
            status = statuses.get(batch.job_id or "")
            if status is not None and not status.finished:
                running.append(batch)
                continue
            if status is not None:
                self.recorder.results(*self.recorder.resolve_job(batch.case_ids, status))
                self.counts.recovered += len(batch.case_ids)
                continue
            # No job id, or one Zendesk does not show (show_many is known to miss jobs): the
            # job may still be queued, so a lookup miss proves nothing until the grace passes.
            if now - batch.pushed_at < self.grace and not self._conclusive(conclusive):
                log.info(
                    "recovery_waiting_grace", batch_id=batch.batch_id, cases=len(batch.case_ids)
                )
                continue
            self.by_lookup(batch.case_ids)
        if running:
            log.info("recovery_jobs_running", jobs=len(running))
        return running

    def _conclusive(self, memo: list[bool]) -> bool:
        """Whether Zendesk lists no unfinished import job, which ends the grace at once
        (asked once a pass; ``memo`` keeps the answer)."""
        if not memo:
            memo.append(lookup_is_conclusive(self.sink.unfinished_jobs()))
            log.info("recovery_jobs_listed", conclusive=memo[0])
        return memo[0]

    def by_lookup(self, case_ids: Iterable[str]) -> None:
        """Record the cases whose tickets exist; put the others back to pending."""
        synced: dict[str, int] = {}
        missing: list[str] = []
        for case_id in case_ids:
            found = self.recorder.lookup(case_id)
            if found is None:
                missing.append(case_id)
            else:
                synced[case_id] = found
        self.recorder.synced(synced)
        self.counts.recovered += len(synced)
        if missing:
            outbox.back_to_pending(self.db, missing, self.recorder.clock())
        log.info("recovered_by_lookup", found=len(synced), requeued=len(missing))
