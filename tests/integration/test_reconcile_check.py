"""`snapzen ledger reconcile` against the sandbox's incremental export (in-process): a real
ledger synced through the sandbox, the export paged as Zendesk pages it, the request
bound, what the check records and what `status` and the metrics then show."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.wrappers import Request

from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands import flag_desk, service
from snapzen.commands.reconcile_check import reconcile_check
from snapzen.commands.status import collect_status, render_prometheus
from snapzen.ledger.evidence import reconciliation
from snapzen.ledger.evidence.agreement import check_tables
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.store.case_flags import flag_duplicates
from snapzen.ledger.store.db import locked_ledger, open_ledger, transaction
from snapzen.support.settings import Settings
from tests import fakes
from tests.fakes import make_case, recent
from tests.sync_parts import FakeClock as Clock

EXPORT = "/zendesk/api/v2/incremental/tickets/cursor"


class Export:
    """The sandbox's incremental ticket export, ``page_size`` tickets a page: the requests it
    answers and the start times asked for are noted."""

    def __init__(self, apis: fakes.SandboxApis, page_size: int) -> None:
        self.apis = apis
        apis.store.cfg = replace(apis.store.cfg, export_page_size=page_size)
        self.start_times: list[int] = []
        self.requests = 0
        apis.answer(EXPORT, self.note)

    def note(self, request: Request) -> None:
        self.requests += 1
        if "start_time" in request.args:
            self.start_times.append(int(request.args["start_time"]))
        # None: the sandbox answers

    def delete(self, *ticket_ids: int) -> None:
        """Deleted in Zendesk (as an agent would): the export shows them as deleted."""
        store = self.apis.store
        with store.lock:
            for ticket_id in ticket_ids:
                store.soft_delete(store.tickets[ticket_id], store.clock())

    def add_stranger(self, case_id: str) -> int:
        """A ticket the ledger never made, carrying a SnapEngage external_id; its id."""
        return self.apis.add_ticket(f"snapengage:{case_id}")


@pytest.fixture
def synced(settings: Settings, apis: fakes.SandboxApis) -> dict[str, int]:
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
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=3), Clock()
    check = run(settings, clock)
    assert check.exit_code == 0 and check.comparison.findings == []
    assert check.complete and check.requests == export.requests == 2
    assert clock.sleeps == [pytest.approx(6.0)]  # 10 export requests a minute
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
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1000), Clock()
    export.delete(synced["c1"], synced["c2"])
    # The retention sweep deleted c2's ticket: its `expired` row names it.
    with locked_ledger(settings.ledger) as db, transaction(db) as conn:
        row = {"event": "expired", "case_id": "c2", "ticket_id": synced["c2"]}
        append_events(conn, [{**row, "recorded_at": "2026-12-01T00:00:00Z"}])
    stranger = export.add_stranger("stranger")
    check = run(settings, clock)
    assert check.exit_code == 3
    found = [(f["kind"], f["case_id"], f["ticket_ids"]) for f in check.as_dict()["found"]]
    assert found == [("missing", "c1", [synced["c1"]]), ("unknown", "stranger", [stranger])]
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
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1), Clock()
    export.delete(synced["c1"])
    check = run(settings, clock, max_requests=2)
    assert export.requests == 2 and check.requests == 2 and not check.complete
    # c1's deletion was read: missing; c3 and c4 were never read: not judged.
    assert [f.case_id for f in check.comparison.findings] == ["c1"]
    assert check.comparison.not_judged == 2
    assert check.exit_code == 3  # an incomplete check needs a look even without findings
    assert status(settings)["last_reconcile"]["complete"] is False


def test_status_suggests_a_check_after_eight_days(
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
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


def _flag(settings: Settings, case_id: str, ticket_ids: list[int]) -> None:
    """Several tickets for a case, as a sync's recovery flags them (before the check)."""
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    with locked_ledger(settings.ledger) as db:
        flag_duplicates(db, case_id, ticket_ids, earlier, source="recovery")


def test_a_duplicate_deleted_in_zendesk_closes_its_flag_chained(
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1000), Clock()
    extra = export.add_stranger("c1")
    _flag(settings, "c1", [synced["c1"], extra])
    kept = run(settings, clock)  # both tickets still live: the flag stays, reported
    assert kept.resolved == [] and [f.kind for f in kept.comparison.findings] == ["duplicated"]
    assert [f["case_id"] for f in status(settings)["flagged"]] == ["c1"]

    export.delete(extra)  # a person deletes the second ticket in Zendesk
    check = run(settings, clock)
    assert check.exit_code == 0 and check.comparison.findings == []
    assert check.as_dict()["resolved"] == [
        {"case_id": "c1", "kind": "duplicate_tickets", "live_tickets": [synced["c1"]]}
    ]
    assert check.details()["flags_resolved"] == 1
    assert status(settings)["flagged"] == []
    db = open_ledger(settings.ledger, read_only=True)
    try:
        [(run_id, details)] = db.conn.execute(
            "SELECT run_id, details FROM events WHERE event = 'case_flag_resolved'"
        ).fetchall()
        assert run_id == check.run_id
        assert json.loads(details) == {
            "kind": "duplicate_tickets", "ticket_ids": sorted([synced["c1"], extra]),
            "resolved_by": "reconcile", "zendesk_tickets": [synced["c1"]],
        }  # fmt: skip
        assert check_tables(db.conn).problems == []
    finally:
        db.conn.close()
    assert run(settings, clock).resolved == []  # closed once


def test_a_read_cut_short_closes_no_flag_it_did_not_see(
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1), Clock()
    extra = export.add_stranger("c4")
    _flag(settings, "c4", [synced["c4"], extra])
    export.delete(extra)  # changed last: on the export's last page
    check = run(settings, clock, max_requests=4)
    # c4's own ticket was read (every synced case judged), its deleted duplicate was not.
    assert not check.complete and check.comparison.not_judged == 0
    assert check.resolved == []
    assert [f["case_id"] for f in status(settings)["flagged"]] == ["c4"]
    assert [f.case_id for f in run(settings, clock).resolved] == ["c4"]  # read whole


class DecidedDuringExport:
    """The sandbox's Zendesk, with ``decide`` run once the export's last page is read: the
    check holds no lock while it reads, so a person may record a decision meanwhile."""

    def __init__(self, sink: ZendeskClient, decide: Any) -> None:
        self.sink, self.decide = sink, decide

    def incremental_tickets(self, start_time: int) -> Any:
        yield from self.sink.incremental_tickets(start_time)
        self.decide()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def test_a_flag_a_person_resolves_during_the_export_is_closed_once(
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int]
) -> None:
    export, clock = Export(apis, page_size=1000), Clock()
    extra = export.add_stranger("c2")
    _flag(settings, "c2", [synced["c2"], extra])
    export.delete(extra)

    def decide() -> None:
        flag_desk.resolve(
            settings, "c2", "duplicate_tickets", reason="deleted by hand", actor="dpo",
            wait_seconds=0,
        )  # fmt: skip

    http = HttpClient(settings.http, service="zendesk", sleep=clock.sleep)
    zendesk = ZendeskClient(settings.zendesk, http, clock=clock, sleep=clock.sleep)
    sink = DecidedDuringExport(zendesk, decide)
    check = reconcile_check(settings, actor="ops", sink=sink, now=later)
    assert check.resolved == []  # already closed when the check took the lock
    db = open_ledger(settings.ledger, read_only=True)
    try:
        rows = db.conn.execute(
            "SELECT actor FROM events WHERE event = 'case_flag_resolved'"
        ).fetchall()
        assert rows == [("dpo",)]
        assert check_tables(db.conn).problems == []
    finally:
        db.conn.close()


def test_a_check_that_cannot_record_itself_closes_no_flag(
    settings: Settings, apis: fakes.SandboxApis, synced: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    export, clock = Export(apis, page_size=1000), Clock()
    extra = export.add_stranger("c3")
    _flag(settings, "c3", [synced["c3"], extra])
    export.delete(extra)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError("database or disk is full")

    # The flag's closing is chained first, then the check's own event fails (the process
    # dies there as well): both go, or neither.
    monkeypatch.setattr(reconciliation, "append_events", disk_full)
    with pytest.raises(OSError, match="disk is full"):
        run(settings, clock)
    monkeypatch.undo()
    assert [f["case_id"] for f in status(settings)["flagged"]] == ["c3"]
    db = open_ledger(settings.ledger, read_only=True)
    try:
        count = "SELECT count(*) FROM events WHERE event = 'case_flag_resolved'"
        assert db.conn.execute(count).fetchone() == (0,)
    finally:
        db.conn.close()
    assert [f.case_id for f in run(settings, clock).resolved] == ["c3"]
