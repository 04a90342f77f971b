"""Pushing while fetching (Pipeline.fetch_window_groups), the ready-case index and count_ready.

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
from snapzen.commands.clients import Clients, clients_from
from snapzen.ledger.store import outbox
from snapzen.ledger.store.db import open_db
from snapzen.support.errors import ProtocolError
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent


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
    settings: Settings, apis: SandboxApis
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


def test_many_widgets_are_fetched_and_synced_exactly_once(
    settings: Settings, apis: SandboxApis
) -> None:
    widgets = [f"w{i}" for i in range(1, 7)]
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
    settings: Settings, apis: SandboxApis
) -> None:
    clients = clients_from(settings)
    broken = Clients(source=_BrokenSource(), sink=clients.sink)
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
        # Read-backs (of an answer in doubt) come within a poll: not counted apart.
        with self.lock:
            self.threads.add(threading.current_thread().name)
        return self.inner.show_tickets(ticket_ids)

    def unfinished_jobs(self) -> Any:
        return self.inner.unfinished_jobs()


@pytest.mark.parametrize("max_jobs", [1, 2, 5])
def test_posts_go_out_one_at_a_time_within_the_job_cap_after_their_intent(
    settings: Settings, apis: SandboxApis, max_jobs: int
) -> None:
    settings.zendesk.max_jobs_in_flight = max_jobs
    apis.polls_until_done = 2  # jobs stay queued for a poll, so slots really fill up
    for widget in ("w1", "w2"):
        apis.add_cases(
            widget,
            [make_case(f"{widget}-{i}", started=recent(300), widget=widget) for i in range(450)],
        )
    clients = clients_from(settings)
    sink = _WatchingSink(clients.sink, settings.ledger.path)
    result = service.sync(settings, clients=Clients(source=clients.source, sink=sink))

    assert result.exit_code == 0 and result.counts.created == 900
    assert set(apis.tickets_by_external_id().values()) == {1} and len(apis.tickets) == 900
    assert sink.overlaps == 0, "two polls or lookups ran at once"
    assert sink.max_posts == 1
    assert "snapzen-submit" in sink.threads  # the POST on its own thread, the pass goes on
    assert sink.not_pushing_at_post == 0, "a POST left before its intent was committed"
    assert max(sink.out_at_post) <= max_jobs  # the POST being sent counts against the cap


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


def test_every_window_of_groups_taken_one_by_one_is_read_once(settings: Settings) -> None:
    from snapzen.ledger.store.db import open_db as open_ledger
    from snapzen.sync.pipeline import Pipeline

    source = _DaySource(per_window=1)
    settings.snapengage.settle_minutes = 10_000  # nothing is ready to push
    pipeline = Pipeline(
        settings,
        open_ledger(settings.ledger.path),
        source,
        _NoSubmits(),  # type: ignore[arg-type]
        ledger_key=b"k" * 32,
        run_id="r1",
        actor="test",
    )
    day = date(2026, 11, 1)
    groups = ([(f"w{n}", day + timedelta(days=r), day) for n in range(3)] for r in range(20))
    fetched = pipeline.fetch_window_groups(groups)
    assert len(fetched) == 60 and set(fetched.values()) == {1}
    assert len(source.read) == 60 and len(set(source.read)) == 60


class _NoSubmits:
    """A sink for a pass that must not submit (settle_minutes keeps every case back)."""

    def submit_import(self, tickets: Any) -> Any:
        raise AssertionError("nothing should be submitted")


def test_fetch_window_groups_counts_per_window_and_takes_no_group_once_stopping(
    settings: Settings,
) -> None:
    from snapzen.ledger.store.db import open_db as open_ledger
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
