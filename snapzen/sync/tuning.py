"""The sync engine's concurrency and memory knobs, in one frozen object.

These are engine internals, not settings: an operator tunes a pass through ``[zendesk]``
(batch size, jobs in flight, concurrent POSTs, poll cadence) and ``[pipeline]``; the values
here bound memory and set how often the pass's thread looks at its queues. Each default was
measured with ``bench/sync_throughput.py`` (bench/RESULTS.md); against a real Zendesk, where a
job takes seconds, none of them is critical, so tests may pass their own ``Tuning``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    # Fetching: at most this many SnapEngage windows are read at once, each on its own reader
    # thread (HTTP, JSON decoding and validation only), with at most ``page_queue_depth``
    # staged pages waiting for the pass's thread: memory stays bounded whatever the backfill.
    fetch_threads: int = 4
    page_queue_depth: int = 6

    # Early polls (``poll_plan.next_poll_at``) come at least this fraction of
    # ``zendesk.job_poll_seconds`` after the previous poll: at most ~12 polls a second at the
    # default 1 s, and only while the rate window can pay for them (``poll_plan.budget``:
    # requests left beyond the imports still to send and the cadence's own polls).
    early_poll_gap: float = 0.08

    # How long the pass's thread waits for a page before looking again at its other work:
    # a POST's answer (its job id is stored promptly), a stop request.
    post_check_seconds: float = 0.02
    idle_wake_seconds: float = 0.5

    # After a stop request, in-flight jobs get this long to report before the pass returns
    # and leaves them 'pushing' with their job ids for the next run's recovery (always safe).
    stop_grace_seconds: float = 5.0
    # How often one drain waits for Zendesk's job cap to free up while none of our jobs runs
    # (other integrations hold it); what is left stays pending for the next pass.
    max_cap_waits: int = 30


DEFAULT_TUNING = Tuning()
