"""Fetch/push overlap (Pipeline.fetch_windows), the ready-case index and count_ready.

No timings are asserted: these check what is sent and recorded, not how fast."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen import service
from snapzen.errors import ProtocolError
from snapzen.ledger import outbox
from snapzen.ledger.db import open_db
from snapzen.settings import Settings
from tests.fakes import FakeApis, make_case, recent


def test_ready_cases_use_the_ready_index_without_a_sort(tmp_path: Path) -> None:
    db = open_db(tmp_path / "x.db")
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
