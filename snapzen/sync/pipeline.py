"""One sync pass (docs/architecture.md): the state machine that composes
the engine's parts.

    recover -> requeue failed -> fetch windows, staging pages and submitting full batches
    as they arrive -> push what is left and drain the jobs -> advance cursors -> result

With ``pushing`` (the submit/poll step the phases repeat) this is the only place that decides
what an error means for the run: abort (a FatalError propagates), record and go on (a refused
batch, a failed case), or leave for recovery (an ambiguous POST, a stop with jobs out).

The parts (docs/architecture.md): ``page_feed`` (readers), ``prepared`` (cases prepared
for a batch), ``batches``, ``submitter`` (POSTs), ``poller`` and
``poll_plan`` (jobs), ``results`` (writes), ``recovery``. Every database write happens on
the pass's thread; the other threads do HTTP and decoding only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta

import sqlite_utils

from snapzen.ledger import alerts, derogations, outbox
from snapzen.ledger.cursor_rules import fetch_window
from snapzen.ledger.status import CaseStatus
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings
from snapzen.sync.clock_guard import advance_cursors, warn_if_clock_behind
from snapzen.sync.contracts import (
    Clock,
    Counts,
    CrashHook,
    ExecutorFactory,
    Monotonic,
    PassResult,
    Sink,
    Source,
    Window,
    thread_pool,
    utcnow,
)
from snapzen.sync.page_feed import FetchProgress, PageFeed, per_widget
from snapzen.sync.poll_plan import PollPlan
from snapzen.sync.poller import Poller
from snapzen.sync.prepare import CasePreparer
from snapzen.sync.prepared import PreparedCases
from snapzen.sync.pushing import Pusher
from snapzen.sync.recovery import Recovery
from snapzen.sync.results import Recorder, log_at_risk, log_future_dated
from snapzen.sync.results_check import unresolved_counts
from snapzen.sync.submitter import Submitter
from snapzen.sync.tuning import DEFAULT_TUNING, Tuning

__all__ = ["Counts", "CrashHook", "PassResult", "Pipeline", "Sink", "Source", "Window"]
__all__ += ["log_at_risk", "utcnow"]

log = get_logger("snapzen.sync.pipeline")


class Pipeline:
    """One pass over source, sink and ledger; every clock and sleep is injectable."""

    def __init__(
        self,
        settings: Settings,
        db: sqlite_utils.Database,
        source: Source,
        sink: Sink,
        *,
        ledger_key: bytes,
        run_id: str,
        actor: str,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Monotonic = time.monotonic,
        crash_hook: CrashHook | None = None,
        progress: Callable[[str, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        tuning: Tuning = DEFAULT_TUNING,
        executor_factory: ExecutorFactory = thread_pool,
    ) -> None:
        self.settings, self.db, self.source, self.sink = settings, db, source, sink
        self.run_id, self.actor = run_id, actor
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic
        self.tuning = tuning
        self._executor_factory = executor_factory
        self.should_stop = stop or (lambda: False)
        self.interrupted = False
        self._stop_seen = 0.0
        self.counts = Counts()
        self.fetch_progress = FetchProgress()
        self._cap_waits = 0  # how often this pass's drain waited for Zendesk's job cap
        zd = settings.zendesk
        crash_hook = crash_hook or (lambda _point: None)
        self.crash_hook = crash_hook
        self.recorder = Recorder(
            db,
            sink,
            self.counts,
            clock=clock,
            run_id=run_id,
            actor=actor,
            progress=progress or (lambda _what, _n: None),
            max_attempts=settings.pipeline.max_attempts,
        )
        self.cases = PreparedCases(
            db,
            CasePreparer(settings, ledger_key),
            batch_size=zd.batch_size,
            settled_before=self._settled_before,
        )
        self.submitter = Submitter(
            db,
            sink,
            self.counts,
            clock=clock,
            monotonic=monotonic,
            run_id=run_id,
            crash_hook=crash_hook,
            max_posts=zd.max_concurrent_posts,
            executor_factory=executor_factory,
        )
        plan = PollPlan(zd.job_poll_seconds, tuning.early_poll_gap, monotonic)
        self.poller = Poller(
            sink,
            self.recorder.resolve_checked,
            plan,
            monotonic=monotonic,
            job_timeout=zd.job_timeout_seconds,
            crash_hook=crash_hook,
            executor_factory=executor_factory,
        )
        self.recovery = Recovery(
            db,
            sink,
            self.recorder,
            self.counts,
            clock=clock,
            grace_seconds=zd.recovery_grace_seconds,
        )
        self.pusher = Pusher(
            zd,
            db,
            sink,
            self.counts,
            (self.cases, self.recorder, self.submitter, self.poller),
            clock=clock,
            monotonic=monotonic,
            crash_hook=crash_hook,
            stopping=self.stopping,
            settled_before=self._settled_before,
            still_to_come=lambda: self.fetch_progress.still_to_come(),
        )

    def stopping(self) -> bool:
        """True once a stop was requested (SIGTERM/Ctrl-C): finish the batch in hand, start
        nothing new. Checked between pages and batches, never inside a transaction."""
        if not self.interrupted and self.should_stop():
            self.interrupted = True
            self._stop_seen = self.monotonic()
            log.warning("stop_requested", **self.counts.as_dict())
        return self.interrupted

    # ------------------------------------------------------------ the pass

    def sync(self, widgets: Sequence[str] | None = None) -> PassResult:
        """Recover, fetch every widget's window, push, advance cursors, check the deadline."""
        widgets = list(widgets or self.settings.snapengage.widgets)
        self.recover()
        outbox.requeue_failed(self.db, self.settings.pipeline.max_attempts, self.clock())
        today = warn_if_clock_behind(self.db, self.clock(), self.run_id)
        self.fetch_windows([(w, *self.window(w, today)) for w in widgets])
        self.push_ready()
        if self.interrupted:
            # Windows may be half fetched: leave every cursor where it was; the next pass
            # refetches (staging is idempotent) and nothing is skipped.
            return self.result()
        cursors = advance_cursors(
            self.db, widgets, today, self.settings.pipeline.max_attempts, self.clock()
        )
        return self.result(cursors)

    def recover(self) -> None:
        """Finish batches a crash (or an ambiguous POST) left 'pushing'."""
        self.pusher.collect()  # (nothing is outstanding at the start of a pass; kept as a guard)
        self.recovery.run()

    def result(self, cursors: dict[str, str] | None = None) -> PassResult:
        deadline = self.clock() - timedelta(days=self.settings.pipeline.deadline_days)
        at_risk = alerts.at_risk_cases(self.db, deadline)
        log_at_risk(at_risk)
        future_dated = alerts.future_dated_cases(self.db, self.clock())
        log_future_dated(future_dated)
        failed = f"SELECT COUNT(*) FROM cases WHERE status='{CaseStatus.FAILED}'"
        grace = timedelta(seconds=self.settings.zendesk.recovery_grace_seconds)
        in_progress, unresolved = unresolved_counts(self.db, self.clock(), grace)
        derogated = derogations.by_recipient(self.db.conn, self.run_id)
        for recipient, count in derogated.items():
            log.warning("derogation_transfers", recipient=recipient, count=count)
        return PassResult(
            run_id=self.run_id,
            derogations=derogated,
            counts=self.counts,
            at_risk=at_risk,
            failed_total=int(self.db.execute(failed).fetchone()[0]),
            unresolved=unresolved,
            in_progress=in_progress,
            future_dated=future_dated,
            cursors=cursors or {},
            interrupted=self.interrupted,
        )

    def window_start(self, widget: str, today: date) -> date:
        """Cursor minus the overlap (late survey data), never before what SnapEngage holds."""
        return self.window(widget, today)[0]

    def window(self, widget: str, today: date) -> tuple[date, date]:
        """(first, last) day to fetch: ``cursor_rules.fetch_window`` on the stored cursor."""
        return fetch_window(
            cursor=outbox.get_cursor(self.db, widget),
            today=today,
            overlap_days=self.settings.snapengage.overlap_days,
            retention_days=self.settings.snapengage.retention_days,
        )

    # ------------------------------------------------------------ fetching, pushing as it goes

    def fetch_windows(self, windows: Sequence[Window]) -> dict[str, int]:
        """``fetch_window_groups`` for one group; returns cases fetched per widget."""
        fetched = self.fetch_window_groups([windows], expected_windows=len(windows))
        return per_widget(fetched, (widget for widget, _, _ in windows))

    def fetch_window_groups(
        self, groups: Iterable[Sequence[Window]], *, expected_windows: int | None = None
    ) -> dict[Window, int]:
        """Fetch (widget, start, end) windows several at once, and push while they arrive:
        this thread stores each staged page (one transaction), submits whenever two full
        batches are ready and a job slot is free, and polls jobs when due. Partial batches
        and the drain are left to ``push_ready``.

        ``groups`` (a backfill's days) are taken one at a time whenever fewer windows wait
        than there are readers, and only while the pass is not stopping. ``expected_windows``
        (at most, if known) lets the cases still to come be estimated (``_budget``). Returns
        cases fetched per window taken."""
        fetched: dict[Window, int] = {}
        self.fetch_progress = FetchProgress(expected_windows)
        pending: Iterator[Sequence[Window]] | None = iter(groups)
        with PageFeed(self.source, self.cases.stage, self.tuning, self._executor_factory) as feed:

            def top_up() -> None:
                nonlocal pending
                while pending is not None and feed.queued < self.tuning.fetch_threads:
                    group = None if self.stopping() else next(pending, None)
                    if group is None:
                        pending = None  # no more windows than those taken
                        self.fetch_progress.expected = len(fetched)
                        return
                    for window in group:
                        fetched.setdefault(window, 0)
                        widget, start, end = window
                        log.info("fetch_window", widget_id=widget, start=str(start), end=str(end))
                    feed.add(group)

            top_up()
            while (pending is not None or not feed.finished) and not self.stopping():
                self.pusher.collect_done()  # POST answers in: their job ids stored promptly
                item = feed.get(self._page_wait())
                if item is not None:
                    # Every page already waiting is stored now, not one per turn: the backlog
                    # of ready cases, not this loop's pace, then sets how fast job slots are
                    # refilled, and readers never wait on a full queue. A due poll stops it.
                    self._store_page(fetched, *item)
                    for _ in range(self.tuning.page_queue_depth - 1):
                        if self.pusher.poll_due() or self.poller.answered():
                            break
                        waiting = feed.more(1)
                        if not waiting:
                            break
                        self._store_page(fetched, *waiting[0])
                for window in feed.take_ended():
                    self.fetch_progress.window_ended(fetched[window])
                    self.recorder.progress("window", 1)  # read to its end: a backfill's bar moves
                self.pusher.fill(full_only=True)
                self.pusher.poll_step(refill=True)
                top_up()
        self.fetch_progress = FetchProgress()
        for widget, count in per_widget(fetched).items():
            log.info("fetched", widget_id=widget, cases=count)
        return fetched

    def _page_wait(self) -> float:
        """How long to wait for a page: until a poll is due or a POST's answer may be in, and
        at least twice a second (a stop request)."""
        tuning = self.tuning
        paused = self.pusher.rate_paused()
        if paused > 0:
            # No poll is made while the budget is spent (it would wait in the pacer), so a due
            # poll must not shorten the wait: that spun at full CPU.
            wait = min(paused, tuning.idle_wake_seconds)
        elif self.poller.jobs:
            wait = min(self.poller.wait(self.pusher.budget()), tuning.idle_wake_seconds)
        else:
            wait = tuning.idle_wake_seconds
        if self.submitter.outstanding or self.poller.polling:
            wait = min(wait, tuning.post_check_seconds)  # a job id to store, slots to free
        return max(wait, 0.001)

    def _store_page(
        self, fetched: dict[Window, int], window: Window, page: list[outbox.StagedCase]
    ) -> None:
        """Store one staged page in one transaction."""
        rows = self.cases.stored(page)
        self.counts.new += outbox.stage(
            self.db, rows, self.clock(), run_id=self.run_id, actor=self.actor
        )
        fetched[window] += len(rows)
        self.fetch_progress.fetched += len(rows)
        self.counts.fetched += len(rows)
        self.recorder.progress("fetched", len(rows))

    # ------------------------------------------------------------ pushing and draining

    def push_ready(self) -> None:
        """Send the ready cases left in batches, then wait for the jobs in flight."""
        try:
            self._drain()
        finally:
            self.submitter.shut_down()

    def _drain(self) -> None:
        while True:
            self.pusher.fill(full_only=False)
            self.pusher.collect()  # nothing more to prepare: take the last POST's answer now
            paused = self.pusher.rate_paused()
            if paused > 0 and not self.stopping() and self.pusher.ready_left():
                # The rate budget is spent and cases wait: sleep until it returns (no poll
                # meanwhile: it would wait in the pacer), in short sleeps (a stop request).
                self.sleep(max(min(paused, 0.5), self.tuning.post_check_seconds))
                continue
            if not self.poller.jobs:
                blocked = self.pusher.job_cap_until - self.monotonic()
                capped = blocked > 0 and self._cap_waits < self.tuning.max_cap_waits
                if capped and not self.stopping():
                    # Other integrations hold Zendesk's job slots and none of ours runs: wait
                    # a poll interval and try again (bounded; what is left stays pending).
                    self._cap_waits += 1
                    self.sleep(blocked)
                    continue
                return
            # Nothing left to submit unless every slot is taken: then the first job to
            # finish frees one, else the last one ends the pass.
            wait = self.poller.wait(self.pusher.budget(), draining=not self.pusher.slots_taken())
            if wait > 0:
                self.sleep(wait)
            self.pusher.poll(refill=False)
            grace_over = self.monotonic() - self._stop_seen > self.tuning.stop_grace_seconds
            if self.poller.jobs and self.interrupted and grace_over:
                log.warning("stop_leaving_jobs_for_recovery", jobs=len(self.poller.jobs))
                return

    def _settled_before(self) -> datetime:
        return self.clock() - timedelta(minutes=self.settings.snapengage.settle_minutes)

    def close(self, *, collect: bool = True) -> None:
        """End of a pass, however it ended (``Pusher.close``)."""
        self.pusher.close(collect=collect)
