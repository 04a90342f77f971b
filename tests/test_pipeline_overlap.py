"""Fetch/push overlap (Pipeline.fetch_windows), the ready-case index and count_ready.

No timings are asserted: these check what is sent and recorded, not how fast."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands import service
from snapzen.ledger import outbox
from snapzen.ledger.db import open_db
from snapzen.support.errors import ProtocolError
from snapzen.support.settings import Settings
from tests.fakes import FakeApis, make_case, recent


def test_ready_cases_use_the_ready_index_without_a_sort(tmp_path: Path) -> None:
    db = open_db(tmp_path / "x.db", create=True)
    assert "cases_ready" in {i.name for i in db["cases"].indexes}
    plan = " ".join(
        str(row[3])
        for row in db.execute(
            """EXPLAIN QUERY PLAN SELECT case_id, widget_id, raw, attempts FROM cases
               WHERE status = 'pending' AND started_at IS NOT NULL AND started_at <= ?
                 AND case_id NOT IN (?) ORDER BY started_at, case_id LIMIT ?""",
            ("2030-01-01T00:00:00Z", "x", 10),
        )
    )
    assert "cases_ready" in plan
    assert "TEMP B-TREE" not in plan


def test_count_ready_counts_pending_settled_cases_up_to_the_cap(
    settings: Settings, apis: FakeApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(7)])
    apis.add_cases("w2", [make_case("live", started=recent(1), widget="w2")])
    service.sync(settings)
    db = open_db(settings.ledger.path)
    now = datetime.now(UTC)
    settled_before = now - timedelta(minutes=30)
    assert outbox.count_ready(db, settled_before, 100) == 0  # 7 pushed; 'live' is unsettled
    assert outbox.count_ready(db, now, 100) == 1
    assert outbox.count_ready(db, now, 0) == 0  # the cap bounds the walk


def test_many_widgets_are_fetched_concurrently_and_synced_exactly_once(
    settings: Settings, apis: FakeApis
) -> None:
    widgets = [f"w{i}" for i in range(1, 7)]  # more widgets than fetch threads
    settings.snapengage.widgets = widgets
    for widget in widgets:
        apis.add_cases(
            widget,
            [make_case(f"{widget}-{i}", started=recent(300), widget=widget) for i in range(260)],
        )
    result = service.sync(settings)
    assert result.exit_code == 0
    counts = apis.tickets_by_external_id()
    assert len(counts) == 6 * 260 and set(counts.values()) == {1}
    # Batches stay full while pages are still arriving: no more imports than needed + tail.
    assert apis.requests["create_many"] <= -(-6 * 260 // 100) + 2
    second = service.sync(settings)
    assert second.counts.created == 0 and len(apis.tickets) == 6 * 260


@dataclass
class _Page:
    widget_id: str
    number: int
    cases: list[Any]


class _BrokenSource:
    """w1 pages fine; w2 fails on its second page."""

    def __init__(self) -> None:
        self.case = make_case("ok-1", started=recent(300))

    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[_Page]:
        if widget_id == "w1":
            yield _Page(widget_id, 1, [self.case])
            return
        yield _Page(widget_id, 1, [])
        raise ProtocolError("snapengage logs for widget w2, page 2: body is a list")


def test_a_reader_error_aborts_the_pass_and_keeps_cursors(
    settings: Settings, apis: FakeApis
) -> None:
    clients = service.build_clients(settings)
    broken = service.Clients(source=_BrokenSource(), sink=clients.sink)
    with pytest.raises(ProtocolError):
        service.sync(settings, clients=broken)
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 0  # no cursor moved
    outcome = db.execute("SELECT outcome FROM runs").fetchone()[0]
    assert outcome == "aborted"
    # Nothing half-done: the next good pass sends the staged case exactly once.
    apis.add_cases("w1", [make_case("ok-1", started=recent(300))])
    service.sync(settings)
    assert apis.tickets_by_external_id() == {"snapengage:ok-1": 1}


class _WatchingSink:
    """Wraps the real Zendesk client: checks that calls other than POSTs and read-backs (polls,
    lookups) never overlap each other, how many POSTs are out at
    once and whether a poll ran while POSTs were out, that a batch is 'pushing' in the ledger
    before its POST leaves, and how many jobs (answered or not) are out at each POST."""

    def __init__(self, inner: Any, ledger: Path) -> None:
        self.inner = inner
        self.ledger = ledger
        self.lock = threading.Lock()
        self.posts = 0  # POSTs in progress
        self.others = 0  # other calls in progress
        self.overlaps = 0  # two non-POST calls at once
        self.polls_beside_posts = 0  # a non-POST call while POSTs were out (allowed)
        self.max_posts = 0
        self.threads: set[str] = set()
        self.unfinished: set[str] = set()
        self.posting = 0  # POSTs entered and not yet answered with a job id
        self.out_at_post: list[int] = []
        self.not_pushing_at_post = 0

    def _enter(self, post: bool) -> None:
        with self.lock:
            if post:
                self.posts += 1
                self.polls_beside_posts += self.others > 0
                self.max_posts = max(self.max_posts, self.posts)
                self.posting += 1
                self.out_at_post.append(len(self.unfinished) + self.posting)
            else:
                self.others += 1
                self.overlaps += self.others > 1
                self.polls_beside_posts += self.posts > 0
            self.threads.add(threading.current_thread().name)

    def _leave(self, post: bool) -> None:
        with self.lock:
            if post:
                self.posts -= 1
            else:
                self.others -= 1

    def submit_import(self, tickets: Any) -> Any:
        self._enter(True)
        try:
            db = open_db(self.ledger, read_only=True)
            try:
                for ticket in tickets:
                    case_id = ticket.external_id.removeprefix("snapengage:")
                    row = db.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,))
                    self.not_pushing_at_post += row.fetchone()[0] != "pushing"
            finally:
                db.conn.close()
            time.sleep(0.005)  # long enough for the next POST to start meanwhile
            job = self.inner.submit_import(tickets)
            with self.lock:
                self.unfinished.add(job.id)
                self.posting -= 1
            return job
        finally:
            self._leave(True)

    def submit_delay(self) -> float:
        return float(self.inner.submit_delay())

    def spare_requests(self) -> int | None:
        return self.inner.spare_requests()  # type: ignore[no-any-return]

    def job_statuses(self, job_ids: Any) -> Any:
        self._enter(False)
        try:
            found = self.inner.job_statuses(job_ids)
            with self.lock:
                self.unfinished -= {j for j, s in found.items() if s.finished}
            return found
        finally:
            self._leave(False)

    def find_ticket_ids(self, external_id: str) -> list[int]:
        self._enter(False)
        try:
            return self.inner.find_ticket_ids(external_id)
        finally:
            self._leave(False)

    def show_tickets(self, ticket_ids: Any) -> Any:
        # Read-backs (of an answer in doubt) run on the poller's thread, with its poll: not
        # counted among the calls that must not overlap.
        with self.lock:
            self.threads.add(threading.current_thread().name)
        return self.inner.show_tickets(ticket_ids)

    def unfinished_jobs(self) -> Any:
        return self.inner.unfinished_jobs()


@pytest.mark.parametrize(
    ("max_jobs", "max_posts"), [(1, 1), (2, 1), (5, 1), (1, 2), (2, 2), (5, 2), (5, 4)]
)
def test_posts_run_on_submit_workers_within_the_post_and_job_caps(
    settings: Settings, apis: FakeApis, max_jobs: int, max_posts: int
) -> None:
    settings.zendesk.max_jobs_in_flight = max_jobs
    settings.zendesk.max_concurrent_posts = max_posts
    apis.polls_until_done = 2  # jobs stay queued for a poll, so slots really fill up
    for widget in ("w1", "w2"):
        apis.add_cases(
            widget,
            [make_case(f"{widget}-{i}", started=recent(300), widget=widget) for i in range(450)],
        )
    clients = service.build_clients(settings)
    sink = _WatchingSink(clients.sink, settings.ledger.path)
    result = service.sync(settings, clients=service.Clients(source=clients.source, sink=sink))

    assert result.exit_code == 0 and result.counts.created == 900
    assert set(apis.tickets_by_external_id().values()) == {1} and len(apis.tickets) == 900
    assert sink.overlaps == 0, "two polls or lookups ran at once"
    assert sink.max_posts <= min(max_posts, max_jobs)
    assert sink.not_pushing_at_post == 0, "a POST left before its intent was committed"
    assert any(name.startswith("snapzen-submit") for name in sink.threads)
    assert max(sink.out_at_post) <= max_jobs  # the POST being sent counts against the cap
    assert not [t for t in threading.enumerate() if t.name.startswith("snapzen-submit")]


class _BarrierSink:
    """The first two POSTs each wait until the other has started: they pass only if both are
    out at once (a timeout breaks the barrier and fails the POST)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(2, timeout=5)
        self.posts = 0
        self.lock = threading.Lock()

    def submit_import(self, tickets: Any) -> Any:
        with self.lock:
            self.posts += 1
            first_two = self.posts <= 2
        if first_two:
            self.barrier.wait()
        return self.inner.submit_import(tickets)

    def submit_delay(self) -> float:
        return float(self.inner.submit_delay())

    def spare_requests(self) -> int | None:
        return self.inner.spare_requests()  # type: ignore[no-any-return]

    def job_statuses(self, job_ids: Any) -> Any:
        return self.inner.job_statuses(job_ids)

    def find_ticket_ids(self, external_id: str) -> list[int]:
        return self.inner.find_ticket_ids(external_id)

    def show_tickets(self, ticket_ids: Any) -> Any:
        return self.inner.show_tickets(ticket_ids)

    def unfinished_jobs(self) -> Any:
        return self.inner.unfinished_jobs()


def test_two_posts_are_out_at_once_with_max_concurrent_posts_2(
    settings: Settings, apis: FakeApis
) -> None:
    settings.zendesk.max_concurrent_posts = 2
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(350)])
    clients = service.build_clients(settings)
    sink = _BarrierSink(clients.sink)
    result = service.sync(settings, clients=service.Clients(source=clients.source, sink=sink))
    assert result.exit_code == 0 and result.counts.created == 350
    assert not sink.barrier.broken
    assert set(apis.tickets_by_external_id().values()) == {1} and len(apis.tickets) == 350


def test_one_post_at_a_time_with_max_concurrent_posts_1(settings: Settings, apis: FakeApis) -> None:
    settings.zendesk.max_concurrent_posts = 1
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(350)])
    clients = service.build_clients(settings)
    sink = _WatchingSink(clients.sink, settings.ledger.path)
    result = service.sync(settings, clients=service.Clients(source=clients.source, sink=sink))
    assert result.exit_code == 0 and result.counts.created == 350
    assert sink.max_posts == 1 and sink.overlaps == 0


class _BudgetSink:
    """A rate budget of ``budget`` imports per window: once spent, ``submit_delay`` reports a
    pause of ``pause`` seconds. Records POSTs made while paused, and how many cases were
    staged when each pause began and when it ended (read from the ledger)."""

    def __init__(self, inner: Any, ledger: Path, budget: int, pause: float) -> None:
        self.inner = inner
        self.ledger = ledger
        self.budget = budget
        self.left = budget
        self.pause = pause
        self.reset_at: float | None = None
        self.posts_while_paused = 0
        self.staged_at_pause: list[tuple[int, int]] = []  # (at start, at end)
        self.lock = threading.Lock()

    def _staged(self) -> int:
        db = open_db(self.ledger, read_only=True)
        try:
            return int(db.execute("SELECT count(*) FROM cases").fetchone()[0])
        finally:
            db.conn.close()

    def spare_requests(self) -> int | None:
        return None

    def submit_delay(self) -> float:
        with self.lock:
            if self.reset_at is None:
                return 0.0
            left = self.reset_at - time.monotonic()
            if left > 0:
                return left
            self.reset_at, self.left = None, self.budget
            start = self.staged_at_pause.pop()[0]
            self.staged_at_pause.append((start, self._staged()))
            return 0.0

    def submit_import(self, tickets: Any) -> Any:
        with self.lock:
            if self.reset_at is not None and time.monotonic() < self.reset_at:
                self.posts_while_paused += 1
            self.left -= 1
            if self.left <= 0 and self.reset_at is None:
                self.reset_at = time.monotonic() + self.pause
                self.staged_at_pause.append((self._staged(), -1))
        return self.inner.submit_import(tickets)

    def job_statuses(self, job_ids: Any) -> Any:
        return self.inner.job_statuses(job_ids)

    def find_ticket_ids(self, external_id: str) -> list[int]:
        return self.inner.find_ticket_ids(external_id)

    def show_tickets(self, ticket_ids: Any) -> Any:
        return self.inner.show_tickets(ticket_ids)

    def unfinished_jobs(self) -> Any:
        return self.inner.unfinished_jobs()


def test_a_spent_rate_budget_pauses_submits_while_fetching_goes_on(
    settings: Settings, apis: FakeApis
) -> None:
    settings.zendesk.max_concurrent_posts = 1
    settings.snapengage.widgets = ["w1", "w2", "w3"]
    for widget in settings.snapengage.widgets:
        apis.add_cases(
            widget,
            [make_case(f"{widget}-{i}", started=recent(300), widget=widget) for i in range(400)],
        )
    clients = service.build_clients(settings)
    sink = _BudgetSink(clients.sink, settings.ledger.path, budget=3, pause=0.3)
    result = service.sync(settings, clients=service.Clients(source=clients.source, sink=sink))

    assert result.exit_code == 0 and result.counts.created == 1200
    assert set(apis.tickets_by_external_id().values()) == {1} and len(apis.tickets) == 1200
    # Submits wait for the budget: at most the one POST already handed over when it ran out.
    assert len(sink.staged_at_pause) >= 3
    assert sink.posts_while_paused <= len(sink.staged_at_pause)
    # The pass went on staging pages while submits were paused (the first pause comes after
    # the first batches, long before every page is in).
    start, end = sink.staged_at_pause[0]
    assert start < 1200 and end > start


class _DaySource:
    """One page of ``per_window`` cases for every (widget, day) window."""

    def __init__(self, per_window: int) -> None:
        self.per_window = per_window
        self.read: list[tuple[str, date]] = []

    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[_Page]:
        self.read.append((widget_id, start))
        cases = [
            make_case(f"{widget_id}-{start}-{i}", started=recent(300), widget=widget_id)
            for i in range(self.per_window)
        ]
        yield _Page(widget_id, 1, cases)


def test_window_groups_added_after_the_readers_ran_dry_are_still_read(
    settings: Settings,
) -> None:
    from snapzen.sync.page_feed import PageFeed

    source = _DaySource(per_window=1)
    day = date(2026, 11, 1)
    with PageFeed(source) as feed:
        for round_ in range(20):
            feed.add([(f"w{n}", day + timedelta(days=round_), day) for n in range(3)])
            pages = 0
            for _ in range(1000):  # bounded: a stranded window fails, not hangs
                item = feed.get(0.05)
                pages += item is not None
                if feed.finished:
                    break
            assert feed.finished and pages == 3, f"round {round_}: a window was never read"
            # Each window's end is reported once, after its last page.
            ended = {window for window, _, _ in feed.take_ended()}
            assert ended == {"w0", "w1", "w2"} and feed.take_ended() == []
    assert len(source.read) == 60


class _NoSubmits:
    """A sink for a pass that must not submit (settle_minutes keeps every case back)."""

    def submit_delay(self) -> float:
        return 0.0

    def spare_requests(self) -> int | None:
        return None

    def submit_import(self, tickets: Any) -> Any:
        raise AssertionError("nothing should be submitted")


def test_fetch_window_groups_counts_per_window_and_takes_no_group_once_stopping(
    settings: Settings,
) -> None:
    from snapzen.ledger.db import open_db as open_ledger
    from snapzen.sync.pipeline import Pipeline

    db = open_ledger(settings.ledger.path)
    source = _DaySource(per_window=2)
    stop = threading.Event()
    pipeline = Pipeline(
        settings,
        db,
        source,
        _NoSubmits(),  # type: ignore[arg-type]
        ledger_key=b"k" * 32,
        run_id="r1",
        actor="test",
        stop=stop.is_set,
    )
    settings.snapengage.settle_minutes = 10_000  # nothing is ready to push
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]
    taken: list[date] = []

    def groups() -> Iterator[list[tuple[str, date, date]]]:
        for day in days:
            taken.append(day)
            yield [("w1", day, day), ("w2", day, day)]

    fetched = pipeline.fetch_window_groups(groups())
    assert fetched == {(w, d, d): 2 for d in days for w in ("w1", "w2")}
    assert pipeline.counts.fetched == 12 and taken == days

    stop.set()
    more = pipeline.fetch_window_groups(groups())
    assert more == {} and taken == days  # a stopping pass takes no new day


def test_the_fetch_expects_no_more_windows_than_it_took_once_its_groups_end(
    settings: Settings,
) -> None:
    """A backfill slice announces every remaining window but may take only a few: once its
    groups end, the estimate of cases still to come counts only the windows taken."""
    from snapzen.ledger.db import open_db as open_ledger
    from snapzen.sync.pipeline import Pipeline

    pipeline = Pipeline(
        settings,
        open_ledger(settings.ledger.path),
        _DaySource(per_window=2),
        _NoSubmits(),  # type: ignore[arg-type]
        ledger_key=b"k" * 32,
        run_id="r1",
        actor="test",
    )
    settings.snapengage.settle_minutes = 10_000  # nothing is ready to push
    seen: list[tuple[int | None, int]] = []
    sink: Any = pipeline.sink

    def spare_requests() -> int | None:
        # Asked each turn of the fetch loop, when the pass weighs an early poll.
        progress = pipeline.fetch_progress
        seen.append((progress.expected, progress.still_to_come()))
        return None

    sink.spare_requests = spare_requests
    day = date(2026, 11, 1)
    pipeline.fetch_window_groups([[("w1", day, day), ("w2", day, day)]], expected_windows=100)
    # Its one group was taken at once: from then on two windows are expected, not 100, and
    # once both are read nothing more is to come (with 100 it would be ~196 cases).
    assert seen and {expected for expected, _ in seen} == {2}
    assert seen[-1] == (2, 0)
