"""Submit: one create_many POST, with the intent committed before it, and the error policy
for its answer. The POST itself runs on a thread of its own (HTTP only), so the pass prepares
the next batch while Zendesk takes this one; one POST is out at a time, and its answer is
taken back on the pass's thread (``settle``) before the next intent is written.

Per batch the writes keep their order: terminal outcomes (``batches.next_batch``), intent
('pushing', committed), POST, job id. A crash anywhere in between leaves the batch 'pushing',
which recovery settles by the job id or by looking its tickets up by external_id.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from snapzen.ledger.store import outbox
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
from snapzen.sync.contracts import CrashHook, Monotonic, Sink
from snapzen.sync.results import Recorder

log = get_logger("snapzen.sync.submit")

Answer = Future[tuple[JobStatus, float]]  # the job, and when its POST was answered


class JobCapFull(Exception):
    """Zendesk's job cap is full (other integrations share it): not an outage; the cases are
    pending again and the pass submits nothing until a job of its own ends, or a while."""


def post(
    recorder: Recorder, sink: Sink, filled: FilledBatch, crash_hook: CrashHook, now: Monotonic
) -> Answer:
    """Write the intent ('pushing', committed), then send the POST on a thread of its own."""
    batch = filled.batch
    outbox.mark_pushing(
        recorder.db, batch.batch_id, filled.drafts, recorder.clock(), recorder.run_id
    )
    recorder.counts.batches += 1
    crash_hook("before_post")
    answer: Answer = Future()

    def send() -> None:
        try:
            answer.set_result((sink.submit_import(filled.tickets), now()))
        except BaseException as exc:  # taken back on the pass's thread, which decides
            answer.set_exception(exc)

    threading.Thread(target=send, name="snapzen-submit", daemon=True).start()
    return answer


def settle(
    recorder: Recorder, filled: FilledBatch, answer: Answer, crash_hook: CrashHook
) -> tuple[JobStatus, float] | None:
    """The POST's answer (waiting for it): the job id stored and the job returned with when it
    was answered, or None when the answer settled the batch otherwise: ambiguous (left
    'pushing' for recovery), refused as invalid (its cases failed; they retry alone). Raises
    ``JobCapFull`` when the job cap is full, and any other refusal after putting the cases
    back to pending (Zendesk did not act, so they can go out again at once): that error ends
    the pass."""
    batch, db, counts = filled.batch, recorder.db, recorder.counts
    try:
        job, answered = answer.result()
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
        outbox.back_to_pending(db, batch.case_ids, recorder.clock())
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
    return job, answered


def _is_job_cap(exc: BaseException) -> bool:
    """TooManyJobs itself, or the retry budget spent on it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TooManyJobsError):
            return True
        seen = seen.__cause__
    return False
