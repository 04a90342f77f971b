"""One sync pass (docs/architecture.md, "The engine"), on one thread, as one story:

    recover -> requeue failed -> fetch pages -> stage -> decide and build -> submit (up to
    the job cap) -> poll -> record -> ... -> drain -> advance cursors -> result

The parts it composes are named for these steps: ``prepare`` (stage, decide and build one
case: pure), ``batches`` (fill a batch), ``submit`` (intent, POST, job id), ``jobs`` (poll,
timed to when jobs can finish), ``results`` (record), ``recovery``. This module is the only
place that decides what an error means for the run: abort (an exception propagates), record
and go on (a refused batch, a failed case), or leave for recovery (an ambiguous POST, a stop
with jobs out). Every wait is for Zendesk's jobs: while they run, the pass fetches and stages.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import sqlite_utils

from snapzen.ledger.evidence import derogations
from snapzen.ledger.store import alerts, outbox
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.cursor_rules import check_clock, fetch_window, utc_day
from snapzen.support import clock as wall_clock
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings
from snapzen.sync.batches import FilledBatch, next_batch, still_as_built
from snapzen.sync.contracts import (
    Batch,
    Clock,
    Counts,
    CrashHook,
    Monotonic,
    PassResult,
    Sink,
    Source,
    Window,
)
from snapzen.sync.jobs import Jobs
from snapzen.sync.prepare import CasePreparer
from snapzen.sync.recovery import Recovery
from snapzen.sync.results import Recorder, log_at_risk, log_future_dated
from snapzen.sync.submit import Answer, JobCapFull, post, settle

__all__ = ["Counts", "CrashHook", "PassResult", "Pipeline", "Sink", "Source", "Window"]

log = get_logger("snapzen.sync.pipeline")

# The longest single sleep: a stop request is seen within it.
WAKE_SECONDS = 0.5
# After a stop request, jobs in flight get this long to report before the pass returns and
# leaves them 'pushing' with their job ids for the next run's recovery (always safe).
STOP_GRACE_SECONDS = 5.0
# How often one drain waits for Zendesk's job cap while none of our jobs runs (other
# integrations hold it); what is left stays pending for the next pass.
MAX_CAP_WAITS = 30


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
        clock: Clock = wall_clock.now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Monotonic = time.monotonic,
        crash_hook: CrashHook | None = None,
        progress: Callable[[str, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.settings, self.db, self.source, self.sink = settings, db, source, sink
        self.run_id, self.actor = run_id, actor
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic
        self.crash_hook = crash_hook or (lambda _point: None)
        self.should_stop = stop or (lambda: False)
        self.interrupted = False
        self.stop_seen = 0.0
        self.counts = Counts()
        self.preparer = CasePreparer(settings, ledger_key)
        zd = settings.zendesk
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
        self.jobs = Jobs(
            sink,
            self.recorder.resolve_job,
            first_guess=zd.job_poll_seconds,
            job_timeout=zd.job_timeout_seconds,
            monotonic=monotonic,
            crash_hook=self.crash_hook,
        )
        self.recovery = Recovery(self.recorder, grace_seconds=zd.recovery_grace_seconds)
        self.posting: tuple[FilledBatch, Answer] | None = None  # the POST out, if one is
        self.ahead: FilledBatch | None = None  # built while no POST could go, not yet sent
        self.cap_until = 0.0  # Zendesk's job cap was full: no POST before this (monotonic)
        self.cap_waits = 0
        self.cap = zd.max_jobs_in_flight  # import jobs in flight at most (Zendesk's cap: 30)

    def stopping(self) -> bool:
        """True once a stop was requested (SIGTERM/Ctrl-C): finish the batch in hand, start
        nothing new. Checked between pages and batches, never inside a transaction."""
        if not self.interrupted and self.should_stop():
            self.interrupted = True
            self.stop_seen = self.monotonic()
            log.warning("stop_requested", **self.counts.as_dict())
        return self.interrupted

    # ------------------------------------------------------------ the pass

    def sync(self, widgets: Sequence[str] | None = None) -> PassResult:
        """Recover, fetch every widget's window, push, advance cursors, check the deadline."""
        widgets = list(widgets or self.settings.snapengage.widgets)
        self.recover()
        outbox.requeue_failed(self.db, self.settings.pipeline.max_attempts, self.clock())
        today = self.today()
        self.fetch_window_groups([[(w, *self.window(w, today)) for w in widgets]])
        self.push_ready()
        if self.interrupted:
            # Windows may be half fetched: leave every cursor where it was; the next pass
            # refetches (staging is idempotent) and nothing is skipped.
            return self.result()
        cursors: dict[str, str] = {}
        for widget in widgets:  # widgets with no chat read yet keep none
            max_attempts = self.settings.pipeline.max_attempts
            moved = outbox.advance_cursor(self.db, widget, today, max_attempts, self.clock())
            if moved is not None:
                cursors[widget] = moved.isoformat()
        return self.result(cursors)

    def recover(self) -> None:
        """Finish batches a crash, a stop or a backfill's previous slice left 'pushing'; the
        jobs still running are polled with this pass's own (answered when they were pushed)."""
        for batch in self.recovery.run():
            answered = self.monotonic() - (self.clock() - batch.pushed_at).total_seconds()
            self.jobs.add(str(batch.job_id), Batch(batch.batch_id, batch.case_ids), answered)

    def today(self) -> date:
        """Today (UTC) for this pass; logs at error when the clock reads earlier than a run
        already recorded. The pass still runs: its windows start at the cursors minus the
        overlap (``cursor_rules.fetch_window``), so nothing is skipped; `status` shows it."""
        now = self.clock()
        row = self.db.execute(
            "SELECT MAX(started_at) FROM runs WHERE run_id != ?", (self.run_id,)
        ).fetchone()
        last = wall_clock.parse_optional(row[0] if row else None)
        behind = check_clock(now, last)
        if behind is not None and last is not None:
            log.error(
                "clock_behind_last_run",
                now=wall_clock.format(now),
                last_run_started_at=wall_clock.format(last),
                behind_seconds=round(behind.total_seconds()),
                hint="the system clock is wrong now or was wrong at the last run; check NTP",
            )
        return utc_day(now)

    def window(self, widget: str, today: date) -> tuple[date, date]:
        """(first, last) day to fetch: ``cursor_rules.fetch_window`` on the stored cursor."""
        return fetch_window(
            cursor=outbox.get_cursor(self.db, widget),
            today=today,
            overlap_days=self.settings.snapengage.overlap_days,
            retention_days=self.settings.snapengage.retention_days,
        )

    def result(self, cursors: dict[str, str] | None = None) -> PassResult:
        deadline = self.clock() - timedelta(days=self.settings.pipeline.deadline_days)
        at_risk = alerts.at_risk_cases(self.db, deadline)
        log_at_risk(at_risk)
        future_dated = alerts.future_dated_cases(self.db, self.clock())
        log_future_dated(future_dated)
        failed = f"SELECT COUNT(*) FROM cases WHERE status='{CaseStatus.FAILED}'"
        grace = timedelta(seconds=self.settings.zendesk.recovery_grace_seconds)
        in_progress, unresolved = alerts.unresolved_counts(self.db, self.clock(), grace)
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

    # ------------------------------------------------------------ fetch pages -> stage

    def fetch_window_groups(self, groups: Iterable[Sequence[Window]]) -> dict[Window, int]:
        """Fetch (widget, first day, last day) windows page by page, group after group (a
        backfill's days; no group is taken once the pass is stopping). Each page is stored in
        one transaction; between pages, jobs are polled when due and full batches go out while
        a job slot is free. Partial batches and the drain are left to ``push_ready``. Returns
        cases fetched per window taken.

        The next page is fetched and validated on a reader thread while this one is handled
        (``_pages``): the pass's thread never waits for SnapEngage and Zendesk in turn."""
        fetched: dict[Window, int] = {}
        pages = self._pages(groups)
        with ThreadPoolExecutor(1, "snapzen-fetch") as reader:
            ahead = None if self.stopping() else reader.submit(next, pages, None)
            while ahead is not None and (item := ahead.result()) is not None:
                ahead = None if self.stopping() else reader.submit(next, pages, None)
                window, rows = item
                fetched[window] = fetched.get(window, 0) + self._store(rows or [])
                if rows is None:  # the window was read to its end: a backfill's bar moves
                    self.recorder.progress("window", 1)
                    continue
                if self.blocked() and self._poll_at(slots=self.cap) <= self.monotonic():
                    self.poll(full_only=True)
                self.push(full_only=True)
                self.build_ahead(full_only=True)
        per_widget = Counter[str]()
        for (widget, _, _), count in fetched.items():
            per_widget[widget] += count
        for widget, count in per_widget.items():
            log.info("fetched", widget_id=widget, cases=count)
        return fetched

    def _pages(
        self, groups: Iterable[Sequence[Window]]
    ) -> Iterator[tuple[Window, list[outbox.StagedCase] | None]]:
        """Each window's pages, staged (validated: pure), then (window, None) at its end."""
        pending = iter(groups)
        while not self.interrupted and (group := next(pending, None)) is not None:
            for window in group:
                log.info("fetch_window", widget_id=window[0], start=str(window[1]))
                for page in self.source.iter_pages(*window):
                    yield window, [self.preparer.stage(window[0], raw) for raw in page.cases]
                yield window, None

    def _store(self, rows: list[outbox.StagedCase]) -> int:
        """Store one staged page in one transaction."""
        if not rows:
            return 0
        self.counts.new += outbox.stage(
            self.db, rows, self.clock(), run_id=self.run_id, actor=self.actor
        )
        self.counts.fetched += len(rows)
        self.recorder.progress("fetched", len(rows))
        return len(rows)

    # ------------------------------------------------------------ decide and build -> submit

    def push(self, *, full_only: bool) -> None:
        """Submit batches while a job slot is free: the one built ahead first (``_take``).
        The last POST may still be out on return (``collect``)."""
        if self.posting is not None and self.posting[1].done():
            self.collect()  # its job id stored promptly
        while not self.stopping() and not self.slots_taken():
            if self.monotonic() < self.cap_until:
                return
            if (filled := self._take(full_only)) is None:
                return
            self.collect()  # one POST out at a time: the previous answer first
            if self.monotonic() < self.cap_until:
                return  # that answer: the job cap is full (this batch's cases stay pending)
            answer = post(self.recorder, self.sink, filled, self.crash_hook, self.monotonic)
            self.posting = (filled, answer)

    def _take(self, full_only: bool) -> FilledBatch | None:
        """The batch built ahead if its cases are still as it was built from (else it is
        dropped and they are decided again), or one built now (``_build``)."""
        filled, self.ahead = self.ahead, None
        if filled is not None and still_as_built(self.db, filled):
            return filled
        return self._build(full_only)

    def _build(self, full_only: bool) -> FilledBatch | None:
        """The next batch, decided and built from the ready cases; with ``full_only`` (fetch
        still running) only while two batches' worth are ready, so pushing early never
        splits what would have been one full batch."""
        size = self.settings.zendesk.batch_size
        if full_only and outbox.count_ready(self.db, self._settled(), 2 * size) < 2 * size:
            return None
        return next_batch(self.db, self.preparer, self.recorder, size, self._settled)

    def build_ahead(self, *, full_only: bool) -> bool:
        """While no POST can go (and no poll is due: the caller's check), decide and build
        the next batch, one at most, so that the POST goes out as soon as a poll frees a
        slot. Nothing is written for its cases before their intent (they stay 'pending'); a
        stop or the pass's end drops it. True when one was built."""
        if self.ahead is not None or not self.blocked() or self.stopping():
            return False
        self.ahead = self._build(full_only)
        return self.ahead is not None

    def collect(self) -> None:
        """Take the answer of the POST out, if one is (waiting for it)."""
        if self.posting is None:
            return
        filled, answer = self.posting
        self.posting = None
        try:
            job = settle(self.recorder, filled, answer, self.crash_hook)
        except JobCapFull:
            # Try again after the first poll's wait, or sooner when one of our jobs ends.
            self.cap_until = self.monotonic() + self.settings.zendesk.job_poll_seconds
            return
        if job is not None:
            self.jobs.add(job[0].id, filled.batch, answered=job[1])

    def blocked(self) -> bool:
        """No POST can go now: every slot taken, or Zendesk's cap full (other integrations)."""
        return self.slots_taken() or self.monotonic() < self.cap_until

    def slots_taken(self) -> bool:
        out = len(self.jobs.flying) + (self.posting is not None)  # the POST out counts too
        return out >= self.cap

    # ------------------------------------------------------------ poll -> record

    def _poll_at(self, *, slots: int) -> float:
        """When the next poll is due (monotonic; infinity with no job in flight): at the
        oldest jobs' time when ``slots`` are needed and none is free (``Jobs.poll_at``: up to
        a fifth of them, if they end close together), else at the newest's."""
        at = self.jobs.poll_at(slots=slots if self.blocked() else 0)
        return math.inf if at is None else at

    def poll(self, *, full_only: bool) -> None:
        """Poll the jobs in flight, refill the slots it freed, then record what finished
        (Zendesk's facts; until then they are 'pushing' with their job ids: recoverable)."""
        found = self.jobs.poll()
        if found.finished:
            self.cap_until = 0.0  # one of ours finished: a slot is free again
            self.push(full_only=full_only)
        self.recorder.results(found.synced, found.failures)

    def push_ready(self, *, drain: bool = True) -> None:
        """Send the ready cases left in batches, then wait for the jobs in flight (unless not
        ``drain``: a backfill's slice hands them to the next, see ``recover``): the pass
        sleeps until a poll is due (in short sleeps, for a stop request)."""
        while True:
            self.push(full_only=False)
            self.collect()  # nothing more to prepare: the last POST's answer now
            size = self.settings.zendesk.batch_size
            most = self.cap * size  # as many batches as there are slots, at most
            ready = 0 if self.stopping() else outbox.count_ready(self.db, self._settled(), most)
            now = self.monotonic()
            if not (ready or drain or self.interrupted):
                return
            if not self.jobs.flying:
                if self.cap_until and ready and self.cap_waits < MAX_CAP_WAITS:
                    # Other integrations hold Zendesk's job slots and none of ours runs:
                    # wait (if the wait is not over already: a loaded machine) and try
                    # again (bounded; what is left stays pending).
                    self.cap_waits += 1
                    self.sleep(max(0.0, self.cap_until - now))
                    continue
                return
            if self.interrupted and now - self.stop_seen > STOP_GRACE_SECONDS:
                log.warning("stop_leaving_jobs_for_recovery", jobs=len(self.jobs.flying))
                return
            at = self._poll_at(slots=math.ceil(ready / size))
            if at <= now:
                self.poll(full_only=False)
            elif not self.build_ahead(full_only=False):
                self.sleep(min(at - now, WAKE_SECONDS))

    def _settled(self) -> datetime:
        return self.clock() - timedelta(minutes=self.settings.snapengage.settle_minutes)
