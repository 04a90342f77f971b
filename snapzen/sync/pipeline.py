"""One sync pass (DESIGN.md "Pipeline"), and the only module that decides what an error means
for the run: abort (FatalError), record and go on (RecordError), or leave for recovery
(AmbiguousWriteError).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.policy.models import (
    EncodedTicket,
    ImportTicket,
    JobStatus,
    SnapEngageCase,
)
from snapzen.policy.transform import external_id
from snapzen.support.errors import (
    AmbiguousWriteError,
    BadRequestError,
    InvalidRecordError,
    RateLimitedError,
    RetriesExhausted,
    SnapzenError,
    TooManyJobsError,
)
from snapzen.support.log import get_logger, one_line
from snapzen.support.settings import Settings
from snapzen.sync.prepare import CasePreparer, Prepared, Staged
from snapzen.sync.prepare_worker import PrepareWorker, RequestFailed, WorkerError

log = get_logger("snapzen.sync.pipeline")

# After a stop request, in-flight import jobs get this long to report before the pass returns
# and leaves them 'pushing' with their job ids for the next run's recovery (always safe).
STOP_GRACE_SECONDS = 5.0

# Concurrent fetching (`fetch_windows`): at most this many SnapEngage windows are read at once,
# each in its own thread doing HTTP and JSON decoding only (the database stays on the pass's
# thread), with at most PAGE_QUEUE_DEPTH pages waiting to be staged, so memory stays bounded
# whatever the size of a backfill.
FETCH_THREADS = 4
PAGE_QUEUE_DEPTH = 6

# Submitting (`_fill`): up to zendesk.max_concurrent_posts worker threads do create_many POSTs
# (HTTP only) while the pass's thread prepares the next batch, so preparation and several POSTs'
# latency overlap. Every database write stays on the pass's thread: each batch's intent is
# committed before its POST is handed over, and its answer is recorded here, oldest first.
# While a POST is outstanding the pass's thread waits for pages at most this long, so that its
# answer (the job id) is stored promptly.
POST_CHECK_SECONDS = 0.02
# While a job slot is free and the prepare worker is preparing, the pass looks for its
# answer this often (between pages).
WORKER_CHECK_SECONDS = 0.005

# How often one drain waits for Zendesk's job cap to free up when none of our jobs runs.
MAX_CAP_WAITS = 30

# Parse once: ``_kept`` keeps the case staging validated (with its raw JSON and subject ref) so
# that ``_prepare_here``, usually a moment later in the same pass, need not decode and validate the
# stored payload again. Used only when the stored raw JSON is the very text staged (checked),
# and bounded (oldest dropped first) so a long backlog cannot grow memory; a miss just parses.
# Parsed pydantic cases are large: at 2000 entries peak RSS reached ~150 MB in the throughput
# bench; 400 (four batches) kept it near 100 MB with the same wall time.
PARSED_CACHE_SIZE = 400
# With a prepare worker (snapzen.sync.prepare_worker) this many batches' worth of cases are
# prepared, or being prepared, ahead of the batch being filled: enough to refill the job slots
# a poll frees without waiting for the worker, few enough to hold little memory (~1 MB each
# once answered: the frame, then the prepared cases with their encoded tickets). 8 held
# ~10 MB more at the same wall time once the answers no longer waited in the socket
# (bench/RESULTS.md, v8).
PREPARE_AHEAD_BATCHES = 4
# Early polls (see next_poll_at): a job is polled when it is due, rather than on the
# job_poll_seconds cadence, while the rate window has requests left beyond the imports the
# pass still has to send (a poll then takes no import's place), or when the pass waits only
# for its last job. Never sooner than this fraction of job_poll_seconds after the last poll.
EARLY_POLL_GAP = 0.08


class Page(Protocol):
    widget_id: str
    number: int
    cases: list[Any]


class Source(Protocol):
    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Any]: ...


class Sink(Protocol):
    def submit_import(self, tickets: Sequence[ImportTicket | EncodedTicket]) -> JobStatus: ...
    def submit_delay(self) -> float:
        """Seconds before a request may leave without waiting for the rate limit (0: now)."""
        ...

    def spare_requests(self) -> int | None:
        """Requests the current rate window still allows (None: unknown)."""
        ...

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]: ...
    def find_ticket_ids(self, external_id: str) -> list[int]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Counts:
    fetched: int = 0
    new: int = 0
    created: int = 0
    withheld: int = 0
    ignored: int = 0
    failed: int = 0
    ambiguous: int = 0
    recovered: int = 0
    ledger_rows: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PassResult:
    run_id: str
    counts: Counts
    at_risk: list[dict[str, Any]] = field(default_factory=list)
    failed_total: int = 0
    unresolved: int = 0
    cursors: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False  # a stop request ended the pass early (cursors not advanced)

    @property
    def exit_code(self) -> int:
        return 3 if (self.at_risk or self.failed_total or self.unresolved) else 0


@dataclass
class _Batch:
    batch_id: str
    case_ids: list[str]


_Ready = tuple[outbox.ReadyCase, Prepared]  # a case taken for a batch, and its preparation
_Ticket = ImportTicket | EncodedTicket  # EncodedTicket: as the prepare worker sends it


CrashHook = Callable[[str], None]
_Arg = TypeVar("_Arg")
_Answer = TypeVar("_Answer")
# (widget id, first day, last day): a SnapEngage window.
Window = tuple[str, date, date]


class Pipeline:
    """Wires source, sink and ledger together; all time and sleeping is injectable."""

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
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        crash_hook: CrashHook | None = None,
        progress: Callable[[str, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        prepare_worker: PrepareWorker | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.source = source
        self.sink = sink
        self.key = ledger_key
        self.run_id = run_id
        self.actor = actor
        self.clock = clock
        self.sleep = sleep
        self.crash_hook = crash_hook or (lambda _point: None)
        self.progress = progress or (lambda _what, _n: None)
        self.preparer = CasePreparer(settings, ledger_key)
        self.counts = Counts()
        self.should_stop = stop or (lambda: False)
        self.interrupted = False
        self._stop_seen = 0.0
        # Import jobs in flight, shared by fetch_windows (which submits full batches while
        # pages still arrive) and push_ready (which flushes and drains), so fetching and
        # pushing overlap instead of running one after the other.
        self._in_flight: dict[str, tuple[_Batch, float]] = {}
        # After Zendesk answered TooManyJobs: no new POST before this (monotonic) time; reset
        # when one of our jobs finishes. _cap_waits bounds how often a drain waits for it.
        self._job_cap_until = 0.0
        self._cap_waits = 0
        self._next_poll: float | None = None
        self._last_poll = float("-inf")  # when the last poll was sent (monotonic)
        # create_many POSTs handed to the submit workers and not yet answered, oldest first
        # (at most zendesk.max_concurrent_posts): each batch is already 'pushing' (intent
        # committed); answers are applied by ``_collect`` on this thread in submission order.
        # Polls and their lookups may run while POSTs are out (ZendeskClient supports
        # concurrent calls: locked pacer and auth, per-call status); recovery runs before
        # any POST of the pass.
        self._posting: deque[_Posting] = deque()
        self._poster: ThreadPoolExecutor | None = None
        # job id -> when its POST was answered (monotonic), for timing early polls; and the
        # shortest "POST answered -> a poll sent that found it finished" so far: how long
        # after its answer a job can be polled and be found done (``_note_job_time``).
        self._answered_at: dict[str, float] = {}
        # The poll out on the poller thread (one at a time; its results are applied here).
        self._polling: _Polling | None = None
        self._poller: ThreadPoolExecutor | None = None
        self._job_seconds: float | None = None
        self._poll_round_trip = float("inf")  # the shortest poll round trip so far
        self._fetch_progress = _FetchProgress()
        # case id -> (raw JSON as staged, the case parsed from it, its subject ref).
        self._parsed: dict[str, tuple[str, SnapEngageCase, str | None]] = {}
        # Preparing ahead in a second process (``_take_prepared``), when one is given: the
        # pairs ready to use, in selection order; the requests out to the worker, oldest
        # first; the case ids in either (no selection takes them twice); and those re-staged
        # since they were selected (their preparation is dropped). The caller owns the worker.
        self._worker = prepare_worker
        self._prepared: deque[_Ready] = deque()
        self._requested: deque[list[outbox.ReadyCase]] = deque()
        self._reserved: set[str] = set()
        self._stale: set[str] = set()

    def stopping(self) -> bool:
        """True once a stop was requested (SIGTERM/Ctrl-C): finish the batch in hand, start
        nothing new. Checked between pages and batches, never inside a transaction."""
        if not self.interrupted and self.should_stop():
            self.interrupted = True
            self._stop_seen = time.monotonic()
            log.warning("stop_requested", **self.counts.as_dict())
        return self.interrupted

    # ------------------------------------------------------------ the pass

    def sync(self, widgets: Sequence[str] | None = None) -> PassResult:
        """Recover, fetch every widget's window, push, advance cursors, check the deadline."""
        widgets = list(widgets or self.settings.snapengage.widgets)
        self.recover()
        outbox.requeue_failed(self.db, self.settings.pipeline.max_attempts, self.clock())
        today = self.clock().date()
        # Widgets are fetched concurrently and full batches pushed while pages still arrive.
        self.fetch_windows([(w, self.window_start(w, today), today) for w in widgets])
        self.push_ready()
        if self.interrupted:
            # Windows may be half fetched: leave every cursor where it was; the next pass
            # refetches (staging is idempotent) and nothing is skipped.
            return self.result()
        cursors = {
            widget: outbox.advance_cursor(
                self.db, widget, today, self.settings.pipeline.max_attempts, self.clock()
            ).isoformat()
            for widget in widgets
        }
        return self.result(cursors)

    def result(self, cursors: dict[str, str] | None = None) -> PassResult:
        deadline = self.clock() - timedelta(days=self.settings.pipeline.deadline_days)
        at_risk = outbox.at_risk_cases(self.db, deadline)
        log_at_risk(at_risk)
        failed_total = self.db.execute(
            "SELECT COUNT(*) FROM cases WHERE status='failed'"
        ).fetchone()[0]
        unresolved = self.db.execute(
            "SELECT COUNT(*) FROM cases WHERE status='pushing'"
        ).fetchone()[0]
        return PassResult(
            run_id=self.run_id,
            counts=self.counts,
            at_risk=at_risk,
            failed_total=int(failed_total),
            unresolved=int(unresolved),
            cursors=cursors or {},
            interrupted=self.interrupted,
        )

    def window_start(self, widget: str, today: date) -> date:
        """Cursor minus the overlap (late survey data), never before what SnapEngage holds."""
        oldest_held = today - timedelta(days=self.settings.snapengage.retention_days)
        cursor = outbox.get_cursor(self.db, widget)
        if cursor is None:
            return oldest_held
        return max(oldest_held, cursor - timedelta(days=self.settings.snapengage.overlap_days))

    # ------------------------------------------------------------ fetch + stage

    def fetch_windows(self, windows: Sequence[Window]) -> dict[str, int]:
        """``fetch_window_groups`` for one group; returns cases fetched per widget."""
        fetched = self.fetch_window_groups([windows], expected_windows=len(windows))
        return _per_widget(fetched, (widget for widget, _, _ in windows))

    def fetch_window_groups(
        self, groups: Iterable[Sequence[Window]], *, expected_windows: int | None = None
    ) -> dict[Window, int]:
        """Fetch (widget, start, end) windows, several at once, and push while they arrive.

        Pages come from up to FETCH_THREADS background readers; this thread stages each page
        (one transaction per page), submits a batch
        whenever a full one is ready and a job slot is free, and polls jobs when due. Partial
        batches and the drain are left to ``push_ready``. Exactly-once is unchanged: staging
        is an idempotent upsert that never touches a pushing or terminal case, and every push
        goes through ``_post``.

        ``groups`` (a backfill's days) are taken one at a time, whenever fewer windows wait
        than there are readers, so reading runs on across group boundaries instead of
        waiting for the last page of each. A group is taken only if the pass is not stopping.
        ``expected_windows``: how many windows ``groups`` holds at most, if known; with it
        the cases still to come are estimated (``_poll_budget``). Returns cases fetched per
        window taken."""
        fetched: dict[Window, int] = {}
        self._fetch_progress = _FetchProgress(expected_windows)
        pending_groups: Iterator[Sequence[Window]] | None = iter(groups)
        with _PageFeed(self.source, self._stage_for_feed) as feed:

            def top_up() -> None:
                nonlocal pending_groups
                while pending_groups is not None and feed.queued < FETCH_THREADS:
                    group = None if self.stopping() else next(pending_groups, None)
                    if group is None:
                        pending_groups = None
                        # No more windows than those taken (a backfill slice ends early).
                        self._fetch_progress.expected = len(fetched)
                        return
                    for widget, start, end in group:
                        fetched.setdefault((widget, start, end), 0)
                        log.info(
                            "fetch_window",
                            widget_id=widget,
                            start=start.isoformat(),
                            end=end.isoformat(),
                        )
                    feed.add(group)

            top_up()
            while (pending_groups is not None or not feed.finished) and not self.stopping():
                # Wake for a page, a due poll, a POST's answer, or (at least twice a second)
                # a stop request.
                paused = self._rate_paused()
                if paused > 0:
                    # No poll is made while the budget is spent (it would wait in the pacer),
                    # so a due poll must not shorten the wait: that spun at full CPU.
                    wait = min(paused, 0.5)  # submit as soon as the budget returns
                else:
                    wait = min(self._poll_wait(), 0.5) if self._in_flight else 0.5
                if self._posting:
                    self._collect_done()
                    if self._posting:
                        wait = min(wait, POST_CHECK_SECONDS)
                if self._polling is not None:
                    wait = min(wait, POST_CHECK_SECONDS)  # its answer frees job slots
                if self._requested and paused <= 0 and self._in_flight_count() < self._max_jobs:
                    wait = min(wait, WORKER_CHECK_SECONDS)  # a batch may be prepared
                item = feed.get(max(wait, 0.001))
                if item is not None:
                    # Every page already waiting is staged now, not one per turn of this
                    # loop: the backlog of ready cases, not the loop's pace, then sets how
                    # fast job slots are refilled (one page a turn held submits to the
                    # readers' pace at 10,000 chats), and the readers never wait on a full
                    # queue. A poll falling due stops it.
                    self._store_page(fetched, *item)
                    for _ in range(PAGE_QUEUE_DEPTH - 1):
                        if self._poll_due() or self._poll_answered():
                            break
                        waiting = feed.more(1)
                        if not waiting:
                            break
                        self._store_page(fetched, *waiting[0])
                for window in feed.take_ended():
                    self._fetch_progress.window_ended(fetched[window])
                self._fill(full_only=True)
                self._poll_step(refill=True)
                top_up()
        self._fetch_progress = _FetchProgress()
        for widget, count in _per_widget(fetched).items():
            log.info("fetched", widget_id=widget, cases=count)
        return fetched

    def _stage_for_feed(self, widget: str, raw: Any) -> Staged:
        """``CasePreparer.stage`` on a reader thread (``_PageFeed``): validating and encoding
        a page there, while the pass's thread writes, posts and polls, took ~0.4 s of its
        work at 10,000 chats (bench/RESULTS.md, v8). The validated case is kept only for a
        pass preparing here (parse once); with a worker it would only hold memory."""
        staged = self.preparer.stage(widget, raw)
        return staged if self._worker is None else Staged(staged.row, None)

    def _store_page(self, fetched: dict[Window, int], window: Window, page: list[Staged]) -> None:
        """Store one staged page in one transaction."""
        rows = [self._kept(staged) for staged in page]
        self.counts.new += outbox.stage(self.db, rows, self.clock())
        if self._reserved:
            self._stale.update(row.case_id for row in rows if row.case_id in self._reserved)
        fetched[window] += len(rows)
        self._fetch_progress.fetched += len(rows)
        self.counts.fetched += len(rows)
        self.progress("fetched", len(rows))

    def _kept(self, staged: Staged) -> outbox.StagedCase:
        """The row to store; its validated case kept for ``_prepare_here`` (parse once)."""
        if staged.case is not None and self._worker is None:
            self._remember(
                staged.row.case_id, staged.row.raw_json, staged.case, staged.row.subject_ref
            )
        return staged.row

    def _remember(
        self, case_id: str, raw_json: str, case: SnapEngageCase, subject: str | None
    ) -> None:
        parsed = self._parsed
        parsed.pop(case_id, None)  # re-staged: now the newest
        parsed[case_id] = (raw_json, case, subject)
        if len(parsed) > PARSED_CACHE_SIZE:
            del parsed[next(iter(parsed))]

    # ------------------------------------------------------------ decide + transform

    def _prepare_here(self, ready: outbox.ReadyCase) -> Prepared:
        """A ready case as a ticket (its draft without a batch index), a terminal outcome or
        an error, on this thread: from the case staging kept when the stored text is the one
        it staged (parse once), else ``CasePreparer.prepare_stored`` as the worker does."""
        raw_json = ready.raw_json
        if raw_json is None:  # selected for the worker, which reads payloads itself
            raw_json = outbox.stored_payload(self.db, ready.case_id)
            if raw_json is None:
                return Prepared(
                    ready.case_id, error="invalid SnapEngage case: its stored payload is gone"
                )
        kept = self._parsed.pop(ready.case_id, None)
        if kept is not None and kept[0] == raw_json:
            return self.preparer.prepare(ready.case_id, ready.widget_id, kept[1], kept[2])
        return self.preparer.prepare_stored(ready.case_id, ready.widget_id, raw_json)

    # ------------------------------------------------------------ prepared ahead (worker)

    def _take_prepared(
        self, limit: int, exclude: Sequence[str], *, wait: bool = True
    ) -> list[_Ready] | None:
        """Up to ``limit`` ready cases with their preparation, oldest selected first; none
        of ``exclude``. [] when nothing is ready. Without ``wait``: None (and nothing taken)
        when that would mean waiting for a started worker (while it is still starting, this
        thread prepares what it was not asked for, or waits for its first answer).

        Without a prepare worker, selected and prepared here and now. With one, taken from
        what it prepared ahead (``_request_ahead``): the worker prepares the next batches
        while this thread stages, posts and polls. A case re-staged since it was selected
        is dropped from that (``_stale``): its new payload is selected and prepared again."""
        taken: list[_Ready] = []
        while len(taken) < limit:
            if self._prepared:
                pair = self._prepared.popleft()
                self._reserved.discard(pair[0].case_id)
                if pair[0].case_id in self._stale:
                    self._stale.discard(pair[0].case_id)
                    continue
                taken.append(pair)
                continue
            busy = [*exclude, *(item.case_id for item, _ in taken)]
            if self._worker is None:
                taken.extend(self._select_and_prepare_here(limit - len(taken), busy))
                break
            if not self._requested:
                self._request_ahead(busy)
                if self._worker is None or self._prepared:
                    continue  # it failed (this thread prepares now), or answered meanwhile
                if not self._requested:
                    break
            if self._worker.stuck():
                self._worker_failed(WorkerError("prepare worker gave no answer in time"))
                continue
            answer_in = self._worker.has_answer()
            if not wait and not answer_in and self._worker.answered:
                self._give_back(taken)
                return None
            if not self._worker.answered and not answer_in:
                # Still starting (importing: a few tenths of a second): rather than wait,
                # prepare here what it was not asked for.
                here = self._select_and_prepare_here(limit - len(taken), [*busy, *self._reserved])
                if here:
                    taken.extend(here)
                    continue
            self._receive_prepared()
        if self._worker is not None:
            self._request_ahead([*exclude, *(item.case_id for item, _ in taken)])
        return taken

    def _select_and_prepare_here(self, limit: int, exclude: Sequence[str]) -> list[_Ready]:
        """Up to ``limit`` ready cases (none of ``exclude``), prepared on this thread."""
        ready = outbox.ready_cases(self.db, self._settled_before(), limit, exclude=exclude)
        return [(item, self._prepare_here(item)) for item in ready]

    def _give_back(self, pairs: Sequence[_Ready]) -> None:
        """Prepared cases taken but not used in this batch: first in line for the next."""
        for pair in reversed(pairs):
            self._prepared.appendleft(pair)
            self._reserved.add(pair[0].case_id)

    def _request_ahead(self, exclude: Sequence[str]) -> None:
        """Keep PREPARE_AHEAD_BATCHES batches' worth of cases prepared or being prepared by
        the worker; the cases asked for are reserved (no other selection takes them)."""
        worker = self._worker
        if worker is None:
            return
        size = self.settings.zendesk.batch_size
        have = len(self._prepared) + sum(len(chunk) for chunk in self._requested)
        # Until it first answers (it is still starting) one batch is asked of it, and this
        # thread prepares the others: reserving them all left the first POST waiting
        # ~0.4 s for the worker's start.
        batches = PREPARE_AHEAD_BATCHES if worker.answered else 1
        want = batches * size - have
        if want <= 0 or (have and want < size):
            return  # asked again once a whole batch has been taken: fewer, fuller queries
        # Without payloads: the worker reads them from the database (~4 KB a case not read,
        # and not held here, bench/RESULTS.md v7).
        ready = outbox.ready_cases(
            self.db,
            self._settled_before(),
            want,
            exclude=[*self._reserved, *exclude],
            with_raw=False,
        )
        for offset in range(0, len(ready), size):
            chunk = ready[offset : offset + size]
            try:
                worker.submit([(item.case_id, item.widget_id) for item in chunk])
            except WorkerError as exc:
                self._worker_failed(exc)
                return
            self._requested.append(chunk)
            self._reserved.update(item.case_id for item in chunk)

    def _receive_prepared(self) -> None:
        """The worker's answer to the oldest request, into ``_prepared`` (prepared here
        instead if the worker refused it or failed)."""
        chunk = self._requested.popleft()
        worker = self._worker
        assert worker is not None, "a request is out only while the worker is in use"
        try:
            results = worker.receive()
            if [prepared.case_id for prepared in results] != [item.case_id for item in chunk]:
                raise WorkerError("prepare worker answered for other cases")
        except RequestFailed as exc:
            log.warning("prepare_worker_request_failed", cases=len(chunk), error=one_line(exc))
            results = [self._prepare_here(item) for item in chunk]
        except WorkerError as exc:
            self._requested.appendleft(chunk)
            self._worker_failed(exc)
            return
        self._prepared.extend(zip(chunk, results, strict=True))

    def _worker_failed(self, exc: WorkerError) -> None:
        """Stop using the worker for the rest of the pass; what it was asked for is prepared
        here, in order. Nothing is lost: the worker never writes."""
        log.warning("prepare_worker_failed", error=one_line(exc))
        if self._worker is not None:
            self._worker.abandon()  # answers may be out of step: nobody uses it again
        self._worker = None
        while self._requested:
            chunk = self._requested.popleft()
            self._prepared.extend((item, self._prepare_here(item)) for item in chunk)

    def _drop_prepared(self, *, collect: bool = True) -> None:
        """Forget what was prepared ahead (end of the pass): those cases are still pending,
        untouched. Answers the worker still owes are read and dropped, so that a next pass
        sharing the worker (a backfill's slices) gets only its own; not on Ctrl-C or a crash
        (``collect`` False: no waiting then), where the worker is given up instead."""
        if self._worker is not None and self._requested:
            if not collect:
                self._worker.abandon()
            else:
                try:
                    self._worker.discard_answers()
                except WorkerError as exc:
                    log.warning("prepare_worker_failed", error=one_line(exc))
                    self._worker.abandon()
        self._prepared.clear()
        self._requested.clear()
        self._reserved.clear()
        self._stale.clear()

    # ------------------------------------------------------------ push

    def next_batch(
        self, *, wait: bool = True
    ) -> tuple[_Batch, list[_Ticket], dict[str, dict[str, Any]]] | None:
        """Take ready cases until a batch is full; terminal outcomes are written on the way.

        Every case taken here either joins the batch (excluded from the next query), leaves
        'pending' (withheld, ignored, failed), or is given back for the next batch (a retry
        that must go alone), so the loop always progresses. Returns None when nothing is
        ready, and without ``wait`` also when filling the batch would mean waiting for the
        prepare worker (what was taken is given back: the pass stages pages meanwhile)."""
        size = self.settings.zendesk.batch_size
        tickets: list[_Ticket] = []
        drafts: dict[str, dict[str, Any]] = {}
        joined: list[_Ready] = []
        deferred: list[_Ready] = []
        solo = False
        while len(tickets) < size and not solo:
            ready = self._take_prepared(
                size - len(tickets),
                exclude=[*drafts, *(item.case_id for item, _ in deferred)],
                wait=wait,
            )
            if ready is None:
                self._give_back([*joined, *deferred])
                return None
            if not ready:
                break
            terminal: list[tuple[str, str, str | None, str | None, str | None]] = []
            failures: dict[str, str] = {}
            for position, (item, prepared) in enumerate(ready):
                # A case that failed before goes out alone: if its ticket is what Zendesk
                # refuses (even a whole-request 4xx), it no longer takes 99 others down.
                if item.attempts > 0 and tickets:
                    deferred.append((item, prepared))
                    continue
                if prepared.ticket is not None and prepared.draft is not None:
                    tickets.append(prepared.ticket)
                    drafts[item.case_id] = {"batch_index": len(drafts), **prepared.draft}
                    joined.append((item, prepared))
                    if item.attempts > 0:
                        solo = True
                        self._give_back(ready[position + 1 :])
                        break
                elif prepared.terminal is not None:
                    terminal.append((item.case_id, *prepared.terminal))
                else:
                    failures[item.case_id] = prepared.error or "unknown preparation error"
            self._write_outcomes(terminal, failures)
        # A deferred retry leads the next batch (alone), instead of waiting behind every
        # case prepared ahead of it.
        self._give_back(deferred)
        if not tickets:
            return None
        batch = _Batch(batch_id=uuid.uuid4().hex, case_ids=list(drafts))
        return batch, tickets, drafts

    def _write_outcomes(
        self,
        terminal: list[tuple[str, str, str | None, str | None, str | None]],
        failures: dict[str, str],
    ) -> None:
        now = self.clock()
        if terminal:
            outbox.set_terminal_many(self.db, terminal, now)
            for _, status, _, reason, _ in terminal:
                if status == "withheld":
                    self.counts.withheld += 1
                else:
                    self.counts.ignored += 1
                log.debug("case_terminal", status=status, reason=reason)
        if failures:
            outbox.mark_failed(self.db, failures, now)
            self.counts.failed += len(failures)
            for case_id, error in failures.items():
                log.warning("case_failed", case_id=case_id, error=error)

    def push_ready(self) -> None:
        """Send ready cases in batches, keeping several import jobs in flight at once."""
        in_flight = self._in_flight
        try:
            self._drain(in_flight)
        finally:
            self._close_poster()

    def _drain(self, in_flight: dict[str, tuple[_Batch, float]]) -> None:
        while True:
            self._fill(full_only=False)
            self._collect()  # nothing more to prepare: take the last POST's answer now
            paused = self._rate_paused()
            if paused > 0 and not self.stopping() and self._ready_left():
                # The rate budget is spent and cases wait: sleep until it returns (no poll
                # meanwhile: it would wait in the pacer), in short sleeps so that a stop
                # request is seen.
                self.sleep(max(min(paused, 0.5), POST_CHECK_SECONDS))
                continue
            if not in_flight:
                blocked = self._job_cap_until - time.monotonic()
                if blocked > 0 and self._cap_waits < MAX_CAP_WAITS and not self.stopping():
                    # Other integrations hold Zendesk's job slots and none of ours is
                    # running: wait a poll interval and try again (bounded; what is left
                    # stays pending for the next pass, its deadline still watched).
                    self._cap_waits += 1
                    self.sleep(blocked)
                    continue
                return
            # Nothing left to submit unless every slot is taken: then the first job to
            # finish frees one, else the last one ends the pass.
            wait = self._poll_wait(draining=not self._slots_taken())
            if wait > 0:
                self.sleep(wait)
            self.poll(refill=False)
            if (
                in_flight
                and self.interrupted
                and time.monotonic() - self._stop_seen > STOP_GRACE_SECONDS
            ):
                log.warning("stop_leaving_jobs_for_recovery", jobs=len(in_flight))
                return

    def _fill(self, *, full_only: bool) -> None:
        """Submit batches while a job slot is free. With ``full_only`` (fetch still running)
        only when at least two batches' worth of cases are pending, so pushing early never
        splits what would have been one full batch into two requests.

        The next batch is prepared while earlier POSTs are still out (on the submit workers);
        answers already in are applied, and the oldest is waited for only when
        ``max_concurrent_posts`` are out; then the new batch goes out. So per batch the writes
        are in today's order: terminal outcomes, intent ('pushing'), POST, job id. Outstanding
        POSTs count against ``max_jobs_in_flight``; they may still be out when this returns
        (polls take the answers already in; ``push_ready`` and ``close`` wait for the rest).
        A poll that falls due during a refill is made between two POSTs.
        """
        size = self.settings.zendesk.batch_size
        while len(self._in_flight) + len(self._posting) < self.settings.zendesk.max_jobs_in_flight:
            if self.stopping() or time.monotonic() < self._job_cap_until:
                return
            if self._rate_paused() > 0:
                return
            if full_only and outbox.count_ready(self.db, self._settled_before(), 2 * size) < (
                2 * size
            ):
                return
            # While fetching (full_only) never wait for the worker: staging the pages that
            # came meanwhile is worth more (receive waits took ~0.9 s at 10,000 chats).
            prepared = self.next_batch(wait=not full_only)
            if prepared is None:
                return
            self._collect_done()
            while len(self._posting) >= self._max_posts:
                self._collect_one()  # the oldest: its answer is due first
            self._post(*prepared)
            # A refill can take a while (a batch every few tens of ms): jobs finishing
            # meanwhile are seen, and their slots refilled, without waiting for its end.
            self._poll_step(refill=None)

    def _rate_paused(self) -> float:
        """Seconds until Zendesk's rate budget allows the next request (0: now).

        While it is spent, no batch is handed to a submit worker (it would sleep in the
        pacer, holding the pass's thread at ``_collect_one``): the pass goes on fetching and
        staging instead, and submits when the window resets. At 100,000 chats this turned an
        11 s idle wait per spent window into staging time (bench/RESULTS.md, v6)."""
        return self.sink.submit_delay()

    @property
    def _max_posts(self) -> int:
        return max(1, self.settings.zendesk.max_concurrent_posts)

    def _poll_wait(self, *, draining: bool = False) -> float:
        """Seconds until the jobs in flight are due a poll (``next_poll_at``): on the
        ``job_poll_seconds`` cadence, or earlier, when each job is due, unless the rate
        window is short of requests (``_poll_budget``). Draining (nothing left to submit)
        while short: once, when the last job is due."""
        now = time.monotonic()
        if self._next_poll is None:
            self._next_poll = now + self.settings.zendesk.job_poll_seconds
        answered = [self._answered_at[j] for j in self._in_flight if j in self._answered_at]
        # Each early poll spends a request: only while the window can pay for it ("short":
        # the imports still to come need more than it has left, so an early poll would push
        # one of them past the reset; at 100,000 chats ~150 early polls in the first window
        # cost ~3 s, bench/RESULTS.md v8). The last job of the pass is worth one early poll.
        if self._poll_budget() != "short":
            waiting_for: str | None = "first"
        elif draining:
            waiting_for = "last"
        else:
            waiting_for = None
        at = next_poll_at(
            regular=self._next_poll,
            last_poll=self._last_poll,
            job_seconds=self._job_seconds,
            answered=answered if len(answered) == len(self._in_flight) else None,
            waiting_for=waiting_for,
            min_gap=self.settings.zendesk.job_poll_seconds * EARLY_POLL_GAP,
        )
        return max(0.0, at - now)

    def _poll_budget(self) -> str:
        """Whether the rate window can pay for polling each job as soon as it is due:
        "spare" when it has requests to spare beyond the imports this pass knows it must
        still send (cases it fetched that are not yet sent, decided or failed),
        "short" when it has not, "unknown" before Zendesk's rate-limit headers were seen."""
        spare = self.sink.spare_requests()
        if spare is None:
            return "unknown"
        counts = self.counts
        out = sum(len(batch.case_ids) for batch, _ in self._in_flight.values())
        out += sum(posting.count for posting in self._posting)
        unsent = counts.fetched - counts.created - counts.withheld - counts.ignored
        unsent -= counts.failed + out
        # And the cases the fetch has yet to bring, estimated from the windows it finished: at
        # 100,000 chats the cases fetched and not yet sent were never more than a few
        # batches (staging keeps pace with sending), so the first window looked affordable
        # throughout and its early polls displaced ~150 imports past its reset.
        unsent += self._fetch_progress.still_to_come()
        imports = -(-max(0, unsent) // self.settings.zendesk.batch_size)
        return "spare" if spare > imports else "short"

    def _ready_left(self) -> bool:
        return outbox.count_ready(self.db, self._settled_before(), 1) > 0

    def _slots_taken(self) -> bool:
        return self._in_flight_count() >= self._max_jobs

    def _in_flight_count(self) -> int:
        return len(self._in_flight) + len(self._posting)

    @property
    def _max_jobs(self) -> int:
        return self.settings.zendesk.max_jobs_in_flight

    def _settled_before(self) -> datetime:
        return self.clock() - timedelta(minutes=self.settings.snapengage.settle_minutes)

    def _post(
        self, batch: _Batch, tickets: list[_Ticket], drafts: dict[str, dict[str, Any]]
    ) -> None:
        """Write the intent, then hand the POST to the submit worker (HTTP only)."""
        assert len(self._posting) < self._max_posts, "too many POSTs outstanding"
        outbox.mark_pushing(self.db, batch.batch_id, drafts, self.clock(), self.run_id)
        self.counts.batches += 1
        self.crash_hook("before_post")
        if self._poster is None:
            self._poster = ThreadPoolExecutor(
                max_workers=self._max_posts, thread_name_prefix="snapzen-submit"
            )
        sent = time.monotonic()
        future = self._poster.submit(_timed, self.sink.submit_import, tickets)
        self._posting.append(_Posting(batch, len(tickets), future, sent))

    def _collect(self) -> str | None:
        """Wait for every outstanding POST and record each outcome (``_collect_one``), oldest
        first; returns the last one's job id. An error stops here: the POSTs after it stay
        outstanding (``close`` records them)."""
        job_id = None
        while self._posting:
            job_id = self._collect_one()
        return job_id

    def _collect_done(self) -> None:
        """Record the answers already in, oldest first, without waiting."""
        while self._posting and self._posting[0].future.done():
            self._collect_one()

    def _collect_one(self) -> str | None:
        """Wait for the oldest outstanding POST (if any) and record its outcome on this thread:
        job id stored and the job counted in flight; ambiguous → left 'pushing' for recovery;
        refused → back to pending, and the error ends the pass as before."""
        if not self._posting:
            return None
        posting = self._posting.popleft()
        batch, count = posting.batch, posting.count
        try:
            job, answered = posting.future.result()
        except AmbiguousWriteError as exc:
            # The POST may have created the job. Leave the batch 'pushing' without a job id:
            # recovery looks the tickets up by external_id after the grace period.
            self.counts.ambiguous += len(batch.case_ids)
            log.warning(
                "import_ambiguous",
                batch_id=batch.batch_id,
                cases=len(batch.case_ids),
                error=one_line(exc),
            )
            return None
        except (InvalidRecordError, BadRequestError) as exc:
            # Zendesk refused the whole request as invalid (400/413/422): it did not act.
            # Failing the batch (attempts + 1) instead of aborting keeps one bad ticket from
            # blocking every run; the cases retry one by one (next_batch), isolating it.
            failures = {
                case_id: one_line(f"Zendesk refused the batch: {exc}") for case_id in batch.case_ids
            }
            outbox.mark_failed(self.db, failures, self.clock())
            self.counts.failed += len(failures)
            log.warning(
                "import_refused", batch_id=batch.batch_id, cases=len(failures), error=one_line(exc)
            )
            return None
        except (RateLimitedError, RetriesExhausted) as exc:
            if not _is_job_cap(exc):
                outbox.back_to_pending(self.db, batch.case_ids, self.clock())
                raise
            # Zendesk's 30-job cap is full (other integrations share it): not an outage. Put
            # the batch back and stop submitting until one of our jobs finishes.
            outbox.back_to_pending(self.db, batch.case_ids, self.clock())
            # Try again after a poll interval, or sooner when one of our jobs finishes (the
            # cap may be held by other integrations while none of ours is running).
            self._job_cap_until = time.monotonic() + self.settings.zendesk.job_poll_seconds
            log.warning("job_cap_reached", batch_id=batch.batch_id, in_flight=len(self._in_flight))
            return None
        except SnapzenError:
            # Refused outright (auth, other 4xx, 429 budget spent): Zendesk did not act, so
            # the cases can go out again at once rather than waiting for recovery's lookup.
            outbox.back_to_pending(self.db, batch.case_ids, self.clock())
            raise
        self.crash_hook("after_post")
        outbox.set_job_id(self.db, batch.batch_id, job.id)
        self.crash_hook("after_job_id")
        log.info(
            "import_submitted",
            batch_id=batch.batch_id,
            job_id=job.id,
            tickets=count,
            post_seconds=round(answered - posting.sent, 3),  # Zendesk's answer time
        )
        self._in_flight[job.id] = (batch, time.monotonic())
        self._answered_at[job.id] = answered
        if self._next_poll is None:
            self._next_poll = time.monotonic() + self.settings.zendesk.job_poll_seconds
        return job.id

    def close(self, *, collect: bool = True) -> None:
        """End of a pass, however it ended: record the answer of a POST still out (so its job
        id is stored rather than left to the lookup), then stop the submit worker."""
        try:
            while collect and self._posting:
                try:
                    self._collect_one()
                except Exception as exc:  # the pass is already failing: keep its own error
                    log.warning("close_collect_failed", error=one_line(exc))
                    break
        finally:
            if self._posting:
                # Not collected (Ctrl-C, a crash, or a failure above): their batches stay
                # 'pushing' without job ids for recovery, as if the process had died; wait for
                # the requests to end, so none of this pass is in progress when it returns.
                for posting in self._posting:
                    with contextlib.suppress(Exception):
                        posting.future.result()
                self._posting.clear()
            try:
                self._close_poster()
                self._drop_prepared(collect=collect)
            finally:
                self._close_poller()

    def _close_poller(self) -> None:
        """Stop the poller. A poll still out (an error or a stop ended the pass) is waited
        for and not applied: its jobs stay 'pushing' with their ids, for recovery."""
        if self._polling is not None:
            with contextlib.suppress(Exception):
                self._polling.future.result()
            self._polling = None
        if self._poller is not None:
            self._poller.shutdown(wait=True)
            self._poller = None

    def _close_poster(self) -> None:
        """Stop the submit workers once nothing is outstanding (started again on need)."""
        if self._poster is not None and not self._posting:
            self._poster.shutdown(wait=True)
            self._poster = None

    def poll(self, *, refill: bool | None = None) -> None:
        """Poll the jobs in flight, wait for the answer and record those that finished (the
        poll already out, if one is)."""
        if self._polling is None:
            self._start_poll()
        self._finish_poll(refill=refill)

    def _poll_due(self) -> bool:
        """A poll may start: jobs in flight, none out, due, and the rate budget not spent
        (while it is, a poll would only wait in the pacer: jobs are looked at once it
        returns)."""
        return (
            bool(self._in_flight)
            and self._polling is None
            and self._poll_wait() <= 0
            and self._rate_paused() <= 0
        )

    def _poll_answered(self) -> bool:
        return self._polling is not None and self._polling.future.done()

    def _poll_step(self, *, refill: bool | None) -> None:
        """Between other work: apply the poll's answer if it came, start one if due."""
        if self._poll_answered():
            self._finish_poll(refill=refill)
        if self._poll_due():
            self._start_poll()

    def _start_poll(self) -> None:
        """Send one show_many for every job in flight on the poller thread (HTTP only): the
        pass stages, prepares and posts while it is out (~60 ms each at 50 ms latency, a
        poll every ~0.15 s near the job cap). One poll at a time; lookups never overlap it
        (they run here, while a poll's answer is applied)."""
        # POSTs may still be out (ZendeskClient is safe for concurrent calls): those answered
        # join this poll, the others a later one.
        self._collect_done()
        # Then not again for job_poll_seconds unless a job is due (next_poll_at): each poll
        # spends rate-limit budget that imports could use.
        now = time.monotonic()
        self._next_poll = now + self.settings.zendesk.job_poll_seconds
        self._last_poll = now
        polled = list(self._in_flight)
        if self._poller is None:
            self._poller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapzen-poll")
        future = self._poller.submit(_timed, self.sink.job_statuses, polled)
        self._polling = _Polling(future, polled, now)

    def _finish_poll(self, *, refill: bool | None) -> None:
        """Apply the answer of the poll out (waiting for it): finished jobs leave the slots.

        With ``refill`` (the ``full_only`` of ``_fill``) the job slots they freed are filled
        before their results are written: writing ~1,000 synced cases takes long enough
        that the next POSTs' latency should overlap it rather than follow it. A crash in
        between leaves those jobs 'pushing' with their job ids, as a crash before the write
        always did; recovery re-reads them."""
        polling = self._polling
        assert polling is not None, "no poll is out"
        self._polling = None
        statuses, answered = polling.future.result()
        # When the request left: handed over at ``sent``, unless it waited (the pacer, a
        # retry's backoff) and left later. Its shortest round trip so far bounds that: a
        # later departure would make jobs look shorter than they are, for the whole pass.
        round_trip = answered - polling.sent
        self._poll_round_trip = min(self._poll_round_trip, round_trip)
        left = max(polling.sent, answered - self._poll_round_trip)
        synced, failures = self._poll_results(polling.polled, statuses, left)
        try:
            if refill is not None and (synced or failures):
                self._fill(full_only=refill)
        finally:
            # Zendesk's results are facts: written even when the refill failed.
            self._record_results(synced, failures)

    def _poll_results(
        self, polled: Sequence[str], statuses: dict[str, JobStatus], sent: float
    ) -> tuple[dict[str, int], dict[str, str]]:
        """Finished jobs of a poll leave ``_in_flight``; their results are returned (synced
        case -> ticket id, failed case -> error), not written."""
        in_flight = self._in_flight
        timeout = self.settings.zendesk.job_timeout_seconds
        # Every job this poll found finished is recorded in one transaction (one commit, not
        # one per job): a crash before it leaves them all 'pushing' with their job ids, which
        # recovery re-reads, exactly as for a crash before any single job's record.
        synced: dict[str, int] = {}
        failures: dict[str, str] = {}
        finished = 0
        for job_id in polled:
            if job_id not in in_flight:
                continue
            batch, started = in_flight[job_id]
            status = statuses.get(job_id)
            if status is not None and status.finished:
                self.crash_hook("after_job")
                self._note_job_time(job_id, sent)
                job_synced, job_failures = self.resolve_job(batch.case_ids, status)
                synced.update(job_synced)
                failures.update(job_failures)
                del in_flight[job_id]
                finished += 1
                self._job_cap_until = 0.0  # one of ours finished: a slot is free again
            elif time.monotonic() - started > timeout:
                # Still queued after the timeout: leave it 'pushing' with its job id; the
                # next run re-reads the job (Zendesk keeps job statuses for hours).
                log.error("job_timeout", job_id=job_id, batch_id=batch.batch_id)
                del in_flight[job_id]
                self._answered_at.pop(job_id, None)
        log.debug(
            "jobs_polled",
            polled=len(statuses),
            finished=finished,
            in_flight=len(in_flight),
        )
        return synced, failures

    def _note_job_time(self, job_id: str, poll_sent: float) -> None:
        """``_job_seconds``: the shortest "POST answered -> a poll sent that found the job
        finished" so far. The poll's sending, not its answer: a poll timed by it reaches
        Zendesk when the job ends, rather than one round trip after (~50 ms a job slot at
        50 ms latency, bench/RESULTS.md, v8)."""
        answered = self._answered_at.pop(job_id, None)
        if answered is not None:
            took = poll_sent - answered
            self._job_seconds = took if self._job_seconds is None else min(self._job_seconds, took)

    def apply_job(self, case_ids: Sequence[str], status: JobStatus) -> None:
        """Map a finished job's per-index results back to cases and record them."""
        self._record_results(*self.resolve_job(case_ids, status))

    def resolve_job(
        self, case_ids: Sequence[str], status: JobStatus
    ) -> tuple[dict[str, int], dict[str, str]]:
        """A finished job's per-index results mapped back to cases (looking up the tickets of
        results it lacks): (synced case -> ticket id, failed case -> error). Writes nothing."""
        by_index = {r.index: r for r in status.result_items if r.index is not None}
        synced: dict[str, int] = {}
        failures: dict[str, str] = {}
        unknown: list[str] = []
        for index, case_id in enumerate(case_ids):
            result = by_index.get(index)
            if result is not None and result.id is not None and not result.error:
                synced[case_id] = int(result.id)
            elif result is not None and (result.error or result.details):
                failures[case_id] = one_line(f"Zendesk: {result.error}: {result.details}")
            else:
                unknown.append(case_id)
        for case_id in unknown:
            found = self.lookup(case_id)
            if found is not None:
                synced[case_id] = found
            else:
                failures[case_id] = one_line(
                    f"Zendesk job {status.id} {status.status} without a result for this ticket"
                    + (f": {status.message}" if status.message else "")
                )
        return synced, failures

    def _record_results(self, synced: dict[str, int], failures: dict[str, str]) -> None:
        self.record(synced)
        if failures:
            outbox.mark_failed(self.db, failures, self.clock())
            self.counts.failed += len(failures)
            for case_id, error in failures.items():
                log.warning("case_failed", case_id=case_id, error=error)

    def record(self, synced: dict[str, int]) -> None:
        if not synced:
            return
        rows = outbox.record_synced(
            self.db, synced, self.clock(), run_id=self.run_id, actor=self.actor
        )
        self.counts.created += len(synced)
        self.counts.ledger_rows += rows
        self.progress("created", len(synced))

    def lookup(self, case_id: str) -> int | None:
        # No try/except: the list endpoint answers an empty list for "none"; a 404 means a
        # wrong base URL or a missing role, and taking it as "absent" would resend the chat.
        ids = self.sink.find_ticket_ids(external_id(case_id))
        if len(ids) > 1:
            log.error("duplicate_tickets_found", case_id=case_id, ticket_ids=sorted(ids))
        return min(ids) if ids else None

    # ------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Finish batches a crash (or an ambiguous POST) left 'pushing'."""
        self._collect()  # (nothing is outstanding at the start of a pass; kept as a guard)
        grace = timedelta(seconds=self.settings.zendesk.recovery_grace_seconds)
        now = self.clock()
        for batch in outbox.pushing_batches(self.db):
            if batch.job_id:
                status = self.sink.job_statuses([batch.job_id]).get(batch.job_id)
                if status is not None and not status.finished:
                    log.info("recovery_job_running", job_id=batch.job_id)
                    continue
                if status is not None:
                    self.apply_job(batch.case_ids, status)
                    self.counts.recovered += len(batch.case_ids)
                    continue
            # No job id, or one Zendesk does not show (show_many is known to miss jobs): the
            # job may still be queued, so a lookup miss proves nothing until the grace passes.
            if now - batch.pushed_at < grace:
                log.info(
                    "recovery_waiting_grace", batch_id=batch.batch_id, cases=len(batch.case_ids)
                )
                continue
            self.recover_by_lookup(batch.case_ids)

    def recover_by_lookup(self, case_ids: Iterable[str]) -> None:
        synced: dict[str, int] = {}
        missing: list[str] = []
        for case_id in case_ids:
            found = self.lookup(case_id)
            if found is None:
                missing.append(case_id)
            else:
                synced[case_id] = found
        self.record(synced)
        self.counts.recovered += len(synced)
        if missing:
            outbox.back_to_pending(self.db, missing, self.clock())
        log.info("recovered_by_lookup", found=len(synced), requeued=len(missing))


@dataclass
class _Posting:
    """A create_many POST handed to a submit worker: its batch ('pushing'), ticket count, the
    answer (job status, when it came) and when it was handed over (monotonic)."""

    batch: _Batch
    count: int
    future: Future[tuple[JobStatus, float]]
    sent: float


def _timed(call: Callable[[_Arg], _Answer], arg: _Arg) -> tuple[_Answer, float]:
    """Run on a submit worker or the poller: the request, and the monotonic time its answer
    came."""
    answer = call(arg)
    return answer, time.monotonic()


@dataclass
class _FetchProgress:
    """A fetch's progress, to estimate the cases it has yet to bring (``_poll_budget``):
    the windows read to their end give the average per window."""

    expected: int | None = None  # windows the fetch reads at most; None: not known
    fetched: int = 0  # cases fetched so far
    ended: int = 0  # windows read to their end
    ended_cases: int = 0  # cases fetched in those

    def window_ended(self, cases: int) -> None:
        self.ended += 1
        self.ended_cases += cases

    def still_to_come(self) -> int:
        """Cases the windows not yet read to their end should still bring (0 while no
        window has ended, or when the number of windows is not known)."""
        if not self.expected or not self.ended or self.ended >= self.expected:
            return 0
        average = self.ended_cases / self.ended
        in_unfinished = self.fetched - self.ended_cases
        return max(0, round(average * (self.expected - self.ended)) - in_unfinished)


@dataclass
class _Polling:
    """A show_many out on the poller thread: its answer (statuses, when it came) and the
    jobs it asked about."""

    future: Future[tuple[dict[str, JobStatus], float]]
    polled: list[str]
    sent: float  # monotonic: when it was handed to the poller


@dataclass(frozen=True)
class _WindowEnd:
    """Handed over by a reader after a window's last page."""

    window: Window


class _PageFeed:
    """Background readers for ``Pipeline.fetch_window_groups``: each thread takes the next
    window, iterates its pages and hands them over through a bounded queue. Windows can be
    added while it runs (``add``); readers are started as needed, up to FETCH_THREADS, and
    wait for more windows until the feed closes. A reader's exception is handed over too and
    re-raised on the pass's thread (that reader stops; the pass fails). Leaving the ``with``
    block (normally, on an error, or on a simulated crash) tells the readers to stop and
    waits for them."""

    def __init__(self, source: Source, stage: Callable[[str, Any], Any] | None = None) -> None:
        self._source = source
        # Applied by the reader to each case of a page (widget id, raw case) before the page
        # is handed over; without it the page's raw cases are handed over as they came.
        self._stage = stage
        self._windows: queue.SimpleQueue[Window] = queue.SimpleQueue()
        self._pending = 0
        self._pages: queue.Queue[object] = queue.Queue(maxsize=PAGE_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ended: list[Window] = []  # windows read to their end, not yet taken

    def __enter__(self) -> _PageFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while any(t.is_alive() for t in self._threads):
            with contextlib.suppress(queue.Empty):  # unblock a reader waiting to put a page
                self._pages.get(timeout=0.05)

    def add(self, windows: Sequence[Window]) -> None:
        for window in windows:
            self._windows.put(window)
        self._pending += len(windows)
        # Readers live until the feed closes, waiting for windows: one that ended when the
        # queue ran dry could miss windows added at that moment, which were then never read.
        while len(self._threads) < min(FETCH_THREADS, self._pending):
            thread = threading.Thread(
                target=self._read, name=f"snapzen-fetch-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    @property
    def queued(self) -> int:
        """Windows added and not yet taken by a reader."""
        return self._windows.qsize()

    @property
    def finished(self) -> bool:
        """Every window added was read to its end and every page handed over."""
        return self._pending == 0

    def take_ended(self) -> list[Window]:
        """The windows read to their end since the last call (their last page taken)."""
        ended, self._ended = self._ended, []
        return ended

    def get(self, timeout: float | None) -> tuple[Window, list[Any]] | None:
        """The next (window, its page's cases, staged if the feed stages), or None when
        ``timeout`` passed without one (or a window just ended)."""
        try:
            item = self._pages.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _WindowEnd):
            self._pending -= 1
            self._ended.append(item.window)
            return None
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, tuple)
        return item

    def more(self, limit: int) -> list[tuple[Window, list[Any]]]:
        """Pages already waiting (at most ``limit``), without waiting for any; the end of
        a window is noted on the way, as by ``get``."""
        pages: list[tuple[Window, list[Any]]] = []
        while len(pages) < limit and not self._pages.empty():
            item = self.get(0)
            if item is not None:
                pages.append(item)
        return pages

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                window = self._windows.get(timeout=0.05)
            except queue.Empty:
                continue  # none yet: more may be added until the feed closes
            try:
                for page in self._source.iter_pages(*window):
                    cases = page.cases
                    del page  # with a stage function, only the staged page is kept
                    if self._stage is not None:
                        cases = [self._stage(window[0], raw) for raw in cases]
                    if not self._put((window, cases)):
                        return
            except BaseException as exc:  # handed to the pass's thread, which decides
                self._put(exc)
                return
            self._put(_WindowEnd(window))


def _per_widget(fetched: dict[Window, int], widgets: Iterable[str] = ()) -> dict[str, int]:
    """Cases fetched per widget (every one of ``widgets`` listed, 0 if none were)."""
    totals = dict.fromkeys(widgets, 0)
    for (widget, _, _), count in fetched.items():
        totals[widget] = totals.get(widget, 0) + count
    return totals


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


def _is_job_cap(exc: BaseException) -> bool:
    """TooManyJobs itself, or the retry budget spent on it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TooManyJobsError):
            return True
        seen = seen.__cause__
    return False


def log_at_risk(at_risk: Sequence[dict[str, Any]], limit: int = 20) -> None:
    """One error line per chat at risk of SnapEngage's deletion (the first ``limit``)."""
    for case in at_risk[:limit]:
        log.error(
            "deletion_deadline_at_risk",
            case_id=case["case_id"],
            widget_id=case["widget_id"],
            started_at=case["started_at"],
            status=case["status"],
        )
