"""`snapzen ledger reconcile` against Zendesk's incremental export behind `responses`: a real
ledger synced through the stateful fakes, the export paged as Zendesk pages it, the request
bound, what the check records and what `status` and the metrics then show."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands import service
from snapzen.commands.metrics import render_prometheus
from snapzen.commands.reconcile_check import reconcile_check
from snapzen.commands.status import collect_status
from snapzen.ledger.evidence.chain import append_event
from snapzen.ledger.store.db import open_ledger, transaction
from snapzen.ledger.store.locked import locked_ledger
from snapzen.support.settings import Settings
from tests import fakes
from tests.fakes import make_case, recent

EXPORT = re.compile(rf"{fakes.ZD_BASE}/api/v2/incremental/tickets/cursor.*")


class Clock:
    """The client's pacing clock: moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Export:
    """Zendesk's cursor-based incremental ticket export over the fake account's tickets."""

    def __init__(self, apis: fakes.FakeApis, page_size: int) -> None:
        self.apis, self.page_size = apis, page_size
        self.deleted: set[int] = set()
        self.extra: list[dict[str, Any]] = []
        self.start_times: list[int] = []
        self.requests = 0
        apis.rsps.add_callback(responses.GET, EXPORT, callback=self.page)

    def page(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.requests += 1
        query = parse_qs(urlsplit(request.url).query)
        if "start_time" in query:
            self.start_times.append(int(query["start_time"][0]))
        offset = int(query.get("cursor", ["0"])[0])
        tickets = [
            {**t, "status": "deleted" if t["id"] in self.deleted else "closed"}
            for t in [*self.apis.tickets, *self.extra]
        ]
        chunk = tickets[offset : offset + self.page_size]
        after = offset + len(chunk)
        body = {
            "tickets": chunk,
            "after_cursor": str(after),
            "after_url": f"{fakes.ZD_BASE}/api/v2/incremental/tickets/cursor.json?cursor={after}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": after >= len(tickets),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture
def synced(settings: Settings, apis: fakes.FakeApis) -> dict[str, int]:
    """Four chats synced through the pipeline: case id -> ticket id."""
    apis.add_cases("w1", [make_case(c, started=recent(200)) for c in ("c1", "c2", "c3", "c4")])
    assert service.sync(settings).exit_code == 0
    return {t["external_id"].removeprefix("snapengage:"): t["id"] for t in apis.tickets}


def later() -> datetime:
    """The check's clock, a second on: a case synced in the second the export starts is not
    judged (the export may have passed it), and the fixture's sync was that second."""
    return datetime.now(UTC) + timedelta(seconds=1)


def run(settings: Settings, clock: Clock, **kwargs: Any) -> Any:
    http = HttpClient(settings.http, service="zendesk", sleep=clock.sleep)
    sink = ZendeskClient(settings.zendesk, http, clock=clock, sleep=clock.sleep)
    return reconcile_check(settings, actor="ops", sink=sink, now=later, **kwargs)


def status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    db = open_ledger(settings.ledger, read_only=True)
    try:
        return collect_status(db, settings, now or datetime.now(UTC))
    finally:
        db.conn.close()


def test_agreement_exits_0_and_status_shows_the_check(
    settings: Settings, apis: fakes.FakeApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=3), Clock()
    check = run(settings, clock)
    assert check.exit_code == 0 and check.comparison.findings == []
    assert check.read.complete and check.read.requests == export.requests == 2
    assert clock.slept == [pytest.approx(6.0)]  # 10 export requests a minute
    # From a day before the first chat: every ticket the ledger made changed after it.
    first_chat = recent(200)
    assert export.start_times[0] <= int((first_chat - timedelta(days=1)).timestamp()) + 5
    assert check.comparison.cases_checked == 4
    report = status(settings)
    last = report["last_reconcile"]
    assert last["run_id"] == check.run_id and last["outcome"] == "ok" and last["exit_code"] == 0
    assert last["findings"] == {"missing": 0, "unknown": 0, "duplicated": 0, "wrong_case": 0}
    assert report["reconcile_due"] is False
    assert report["last_run"]["kind"] == "sync"  # the check is an event, not a pass


def test_findings_exit_3_are_recorded_and_an_expired_ticket_is_not_missing(
    settings: Settings, apis: fakes.FakeApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1000), Clock()
    export.deleted = {synced["c1"], synced["c2"]}
    # The retention sweep deleted c2's ticket: its `expired` row names it.
    with locked_ledger(settings.ledger) as db, transaction(db) as conn:
        row = {"event": "expired", "case_id": "c2", "ticket_id": synced["c2"]}
        append_event(conn, {**row, "recorded_at": "2026-12-01T00:00:00Z"})
    export.extra = [{"id": 900, "external_id": "snapengage:stranger"}]
    check = run(settings, clock)
    assert check.exit_code == 3
    found = [(f["kind"], f["case_id"], f["ticket_ids"]) for f in check.as_dict()["found"]]
    assert found == [("missing", "c1", [synced["c1"]]), ("unknown", "stranger", [900])]
    report = status(settings)
    last = report["last_reconcile"]
    assert last["outcome"] == "partial" and last["exit_code"] == 3
    assert last["findings"]["missing"] == 1 and last["findings"]["unknown"] == 1
    metrics = render_prometheus(report)
    assert 'snapzen_reconcile_findings{kind="missing"} 1' in metrics
    assert 'snapzen_reconcile_findings{kind="wrong_case"} 0' in metrics
    stamp = datetime.fromisoformat(last["finished_at"]).timestamp()
    assert f"snapzen_reconcile_last_run_timestamp_seconds {stamp!r}" in metrics


def test_the_request_bound_stops_the_read_and_absence_is_then_not_judged(
    settings: Settings, apis: fakes.FakeApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1), Clock()
    export.deleted = {synced["c1"]}
    check = run(settings, clock, max_requests=2)
    assert export.requests == 2 and check.read.requests == 2 and not check.read.complete
    # c1's deletion was read: missing; c3 and c4 were never read: not judged.
    assert [f.case_id for f in check.comparison.findings] == ["c1"]
    assert check.comparison.not_judged == 2
    assert check.exit_code == 3  # an incomplete check needs a look even without findings
    assert status(settings)["last_reconcile"]["complete"] is False


def test_status_suggests_a_check_after_eight_days(
    settings: Settings, apis: fakes.FakeApis, synced: dict[str, int]
) -> None:
    later = datetime.now(UTC) + timedelta(days=9)
    assert status(settings, later)["reconcile_due"] is True  # never ran, ledger 9 days old
    assert status(settings)["reconcile_due"] is False  # a new ledger is not nagged
    Export(apis, page_size=1000)
    run(settings, Clock())
    assert status(settings, later - timedelta(days=2))["reconcile_due"] is False
    report = status(settings, later)
    assert report["reconcile_due"] is True
    assert "snapzen_reconcile_due 1" in render_prometheus(report)
