"""The sync engine's parts driven on their own: no submit or poll thread, fake clocks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snapzen.commands import service
from snapzen.ledger import outbox
from snapzen.ledger.db import open_db
from snapzen.policy.models import JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.errors import AmbiguousWriteError
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.sync.batches import next_batch
from snapzen.sync.contracts import Counts
from snapzen.sync.pipeline import Pipeline
from snapzen.sync.prepare import CasePreparer
from snapzen.sync.prepared import PreparedCases
from snapzen.sync.recovery import Recovery
from snapzen.sync.results import Recorder
from snapzen.sync.submitter import Submitter
from snapzen.sync.tuning import Tuning
from tests.fakes import FakeApis, make_case, recent
from tests.sync_parts import FakeClock, inline_executor

KEY = b"k" * 32


def statuses(db: Any) -> dict[str, str]:
    return dict(db.execute("SELECT case_id, status FROM cases").fetchall())


class _Parts:
    """Staged cases and the parts that batch and record them, on a settable wall clock."""

    def __init__(self, settings: Settings, sink: Any, n: int) -> None:
        self.now = datetime.now(UTC)
        self.db = open_db(settings.ledger.path)
        self.counts = Counts()
        self.cases = PreparedCases(
            self.db,
            CasePreparer(settings, KEY),
            batch_size=100,
            settled_before=lambda: self.now,
        )
        self.recorder = Recorder(
            self.db,
            sink,
            self.counts,
            clock=lambda: self.now,
            run_id="r1",
            actor="test",
            progress=lambda _what, _n: None,
        )
        raws = [make_case(f"c{i}", started=recent(300)) for i in range(n)]
        rows = self.cases.stored([self.cases.stage("w1", raw) for raw in raws])
        outbox.stage(self.db, rows, self.now)


class _Sink:
    """Zendesk as the submitter and recovery see it: records what it was sent."""

    def __init__(self, parts: _Parts | None = None) -> None:
        self.parts = parts
        self.status_at_post: list[set[str]] = []
        self.tickets: dict[str, int] = {}  # external id -> ticket id
        self.fail: BaseException | None = None

    def submit_import(self, tickets: Any) -> JobStatus:
        assert self.parts is not None
        self.status_at_post.append(set(statuses(self.parts.db).values()))
        if self.fail is not None:
            raise self.fail
        return JobStatus(id=f"job{len(self.status_at_post)}", status="queued")

    def find_ticket_ids(self, external: str) -> list[int]:
        return [self.tickets[external]] if external in self.tickets else []

    def unfinished_jobs(self) -> list[JobStatus]:
        # An import job still queued somewhere: a lookup miss proves nothing yet.
        return [JobStatus(id="other", status="queued", job_type="bulk_import_tickets")]


def test_the_intent_is_committed_before_the_post_and_answers_come_back_in_order(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 150)
    sink.parts = parts
    clock = FakeClock()
    submitter = Submitter(
        parts.db,
        sink,  # type: ignore[arg-type]
        parts.counts,
        clock=lambda: parts.now,
        monotonic=clock,
        run_id="r1",
        crash_hook=lambda _point: None,
        max_posts=2,
        executor_factory=inline_executor,
    )
    first = next_batch(parts.cases, parts.recorder, 100)
    assert first is not None
    submitter.post(first)
    second = next_batch(parts.cases, parts.recorder, 100)
    assert second is not None and submitter.outstanding == 1
    sink.fail = AmbiguousWriteError("timed out after sending")
    submitter.post(second)
    assert submitter.full and submitter.answered()
    # Each POST found its own batch already 'pushing' (the intent on disk first).
    assert sink.status_at_post == [{"pushing", "pending"}, {"pushing"}]
    answer = submitter.next_answer()
    assert answer is not None and answer.job is not None and answer.job.id == "job1"
    assert answer.posting.batch.case_ids == first.batch.case_ids
    answer = submitter.next_answer()
    assert answer is not None and isinstance(answer.error, AmbiguousWriteError)
    assert submitter.next_answer() is None and parts.counts.batches == 2


def test_recovery_waits_for_the_grace_then_records_found_tickets_and_requeues_the_rest(
    settings: Settings,
) -> None:
    sink = _Sink()
    parts = _Parts(settings, sink, 3)
    filled = next_batch(parts.cases, parts.recorder, 100)
    assert filled is not None
    outbox.mark_pushing(parts.db, filled.batch.batch_id, filled.drafts, parts.now, "r0")
    sink.tickets[external_id("c0")] = 41  # the ambiguous POST created only c0's ticket
    recovery = Recovery(
        parts.db,
        sink,  # type: ignore[arg-type]
        parts.recorder,
        parts.counts,
        clock=lambda: parts.now,
        grace_seconds=600,
    )
    parts.now += timedelta(seconds=599)
    recovery.run()
    assert set(statuses(parts.db).values()) == {"pushing"}  # a miss proves nothing yet
    parts.now += timedelta(seconds=2)
    recovery.run()
    assert statuses(parts.db) == {"c0": "synced", "c1": "pending", "c2": "pending"}
    assert parts.counts.recovered == 1 and parts.counts.created == 1


def test_a_pass_runs_to_its_end_with_no_submit_or_poll_thread_on_a_fake_clock(
    settings: Settings, apis: FakeApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(300)) for i in range(250)])
    apis.polls_until_done = 3
    clock = FakeClock()
    clients = service.build_clients(settings, sleep=lambda _s: None)
    threads: set[str] = set()

    def hook(_point: str) -> None:
        threads.update(thread.name for thread in threading.enumerate())

    db = open_db(settings.ledger.path)
    outbox.start_run(db, "r1", "sync", "test", datetime.now(UTC), None)
    pipeline = Pipeline(
        settings,
        db,
        clients.source,
        clients.sink,
        ledger_key=require_ledger_key(settings),
        run_id="r1",
        actor="test",
        monotonic=clock,
        sleep=clock.advance,
        crash_hook=hook,
        tuning=Tuning(page_queue_depth=0),  # inline readers: nothing drains the queue meanwhile
        executor_factory=inline_executor,
    )
    try:
        result = pipeline.sync(["w1"])
    finally:
        pipeline.close()
    assert result.counts.created == 250 and result.exit_code == 0
    assert set(statuses(db).values()) == {"synced"}
    assert threads and not any(name.startswith("snapzen-") for name in threads)
    # The drain waited on the fake clock, on the poll cadence: no wall-clock sleep.
    assert clock() > 1000.0


def test_tuning_is_one_frozen_object() -> None:
    with pytest.raises(AttributeError):
        Tuning().early_poll_gap = 0.5  # type: ignore[misc]


class _Pages:
    """A SnapEngage source of ``pages`` pages per window; a window named "bad" fails after
    its first page."""

    def __init__(self, pages: int) -> None:
        self.pages = pages

    def iter_pages(self, widget_id: str, start: Any, end: Any) -> Any:
        for number in range(1, self.pages + 1):
            if widget_id == "bad" and number == 2:
                raise RuntimeError("SnapEngage answered 500 twice")
            yield _Page(widget_id, [f"{widget_id}-{number}-{i}" for i in range(3)])


class _Page:
    def __init__(self, widget_id: str, cases: list[str]) -> None:
        self.widget_id, self.cases = widget_id, cases


def test_the_page_feed_reads_stages_and_ends_windows_without_a_thread() -> None:
    from snapzen.sync.page_feed import PageFeed

    day = datetime(2026, 11, 1, tzinfo=UTC).date()
    staged: list[tuple[str, str]] = []

    def stage(widget: str, raw: str) -> str:
        staged.append((widget, raw))
        return raw.upper()

    before = threading.active_count()
    tuning = Tuning(page_queue_depth=0)  # read inline: nothing drains the queue meanwhile
    with PageFeed(_Pages(2), stage, tuning, inline_executor) as feed:
        feed.add([("w1", day, day), ("w2", day, day)])
        assert feed.queued == 0 and threading.active_count() == before
        pages = feed.more(10)
        assert [(window[0], cases[0]) for window, cases in pages] == [
            ("w1", "W1-1-0"), ("w1", "W1-2-0"), ("w2", "W2-1-0"), ("w2", "W2-2-0"),
        ]  # fmt: skip
        assert feed.finished and {w[0] for w in feed.take_ended()} == {"w1", "w2"}
        assert len(staged) == 12  # each case staged once, by the reader

        feed.add([("bad", day, day)])
        assert feed.get(0) is not None  # its first page still comes
        with pytest.raises(RuntimeError, match="500 twice"):
            feed.get(0)  # then the reader's error, re-raised on the pass's thread
        assert not feed.finished  # the failed window never ended
