"""Submit: one create_many POST, with the intent committed before it, and the error policy
for its answer. On the pass's thread: nothing else of the pass runs while a POST is out.

Per batch the writes keep their order: terminal outcomes (``batches.next_batch``), intent
('pushing', committed), POST, job id. A crash anywhere in between leaves the batch 'pushing',
which recovery settles by the job id or by looking its tickets up by external_id.
"""

from __future__ import annotations

from snapzen.ledger import outbox
from snapzen.policy.models import JobStatus
from snapzen.support.errors import (
    AmbiguousWriteError,
    BadRequestError,
    InvalidRecordError,
    SnapzenError,
    TooManyJobsError,
)
from snapzen.support.log import get_logger, one_line
from snapzen.sync.batches import FilledBatch
from snapzen.sync.contracts import CrashHook, Sink
from snapzen.sync.results import Recorder

log = get_logger("snapzen.sync.submit")


class JobCapFull(Exception):
    """Zendesk's job cap is full (other integrations share it): not an outage; the cases are
    pending again and the pass submits nothing until a job of its own ends, or a while."""


def submit(
    recorder: Recorder, sink: Sink, filled: FilledBatch, crash_hook: CrashHook
) -> JobStatus | None:
    """Write the intent, POST, store the job id. Returns the job (now in flight), or None when
    the POST's answer settled the batch otherwise: ambiguous (left 'pushing' for recovery),
    refused as invalid (its cases failed; they retry alone). Raises ``JobCapFull`` when the
    job cap is full, and any other refusal after putting the cases back to pending (Zendesk
    did not act, so they can go out again at once): that error ends the pass."""
    batch, db, counts, clock = filled.batch, recorder.db, recorder.counts, recorder.clock
    outbox.mark_pushing(db, batch.batch_id, filled.drafts, clock(), recorder.run_id)
    counts.batches += 1
    crash_hook("before_post")
    try:
        job = sink.submit_import(filled.tickets)
    except AmbiguousWriteError as exc:
        # The POST may have created the job: recovery looks the tickets up by external_id
        # after the grace period.
        counts.ambiguous += len(batch.case_ids)
        log.warning("import_ambiguous", batch_id=batch.batch_id, error=one_line(exc))
        return None
    except (InvalidRecordError, BadRequestError) as exc:
        # Zendesk refused the whole request (400/413/422) and did not act. Failing the batch
        # keeps one bad ticket from blocking every run; the cases retry one by one.
        error = one_line(f"Zendesk refused the batch: {exc}")
        recorder.failed(dict.fromkeys(batch.case_ids, error))
        log.warning("import_refused", batch_id=batch.batch_id, error=one_line(exc))
        return None
    except SnapzenError as exc:
        outbox.back_to_pending(db, batch.case_ids, clock())
        if _is_job_cap(exc):
            log.warning("job_cap_reached", batch_id=batch.batch_id)
            raise JobCapFull from exc
        raise
    crash_hook("after_post")
    outbox.set_job_id(db, batch.batch_id, job.id)
    crash_hook("after_job_id")
    log.info(
        "import_submitted", batch_id=batch.batch_id, job_id=job.id, tickets=len(filled.tickets)
    )
    return job


def _is_job_cap(exc: BaseException) -> bool:
    """TooManyJobs itself, or the retry budget spent on it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TooManyJobsError):
            return True
        seen = seen.__cause__
    return False
