"""The prepare worker process (snapzen.sync.prepare_worker): it prepares exactly what the pass's
thread would, a case re-staged after it was prepared ahead goes out as re-staged, and a worker
that cannot start, refuses a request or dies loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from snapzen.clients.zendesk import create_many_body
from snapzen.commands import service
from snapzen.ledger import outbox
from snapzen.ledger.db import open_db
from snapzen.policy.models import EncodedTicket, ImportTicket, ticket_json
from snapzen.support.jsoncodec import dumps_bytes
from snapzen.support.settings import Settings
from snapzen.sync import prepare_worker
from snapzen.sync.batches import next_batch
from snapzen.sync.contracts import Counts
from snapzen.sync.prepare import CasePreparer, Prepared
from snapzen.sync.prepare_worker import PrepareWorker, RequestFailed, WorkerError
from snapzen.sync.prepared import PreparedCases
from snapzen.sync.results import Recorder
from snapzen.sync.tuning import Tuning
from tests import fakes
from tests.fakes import FakeApis, make_case, recent
from tests.sync_parts import FakeClock

KEY = b"k" * 32

CASES = [
    make_case("eu-consent", started=recent(190), country="DE", consent="yes"),
    make_case("eu-refused", started=recent(189), country="DE", consent="no"),
    make_case("us", started=recent(188), country="US", consent=None),
    make_case("offline", started=recent(187), kind="offline"),
    make_case("card", started=recent(186), messages=[("", "my card 4111 1111 1111 1111 thanks")]),
    make_case("bad-email", started=recent(185), country="GB", consent="1", email="nope"),
]


@dataclass
class Parts:
    """The parts of the pass that select, prepare and batch cases, without its threads."""

    db: Any
    cases: PreparedCases
    recorder: Recorder

    def next_batch(self, *, wait: bool = True) -> Any:
        filled = next_batch(self.cases, self.recorder, 100, wait=wait)
        return None if filled is None else (filled.batch, filled.tickets, filled.drafts)


def new_pipeline(settings: Settings, db: Any, worker: Any = None) -> Parts:
    def now() -> datetime:
        return datetime.now(UTC)

    def settled_before() -> datetime:
        return now() - timedelta(minutes=settings.snapengage.settle_minutes)

    cases = PreparedCases(
        db,
        CasePreparer(settings, KEY),
        batch_size=100,
        settled_before=settled_before,
        tuning=Tuning(),
        worker=worker,
    )
    recorder = Recorder(
        db, None, Counts(), clock=now, run_id="r1", actor="test", progress=lambda _w, _n: None
    )  # type: ignore[arg-type]
    return Parts(db, cases, recorder)


def stage_page(p: Parts, *raws: dict[str, Any]) -> None:
    """Stage as a fetched page is staged (the pass's own path, which notes re-staging)."""
    rows = p.cases.stored([p.cases.stage("w1", raw) for raw in raws])
    outbox.stage(p.db, rows, datetime.now(UTC))


def many(n: int) -> list[dict[str, Any]]:
    return [make_case(f"c{i:03d}", started=recent(300 - i % 100)) for i in range(n)]


def take(p: Parts) -> Any:
    """The next batch, its intent written as the submitter writes it (so its cases leave
    'pending')."""
    batch = p.next_batch()
    if batch is not None:
        outbox.mark_pushing(p.db, batch[0].batch_id, batch[2], datetime.now(UTC), "r1")
    return batch


@pytest.fixture
def worker(settings: Settings) -> Any:
    started = PrepareWorker.start(settings, KEY)
    yield started
    started.close()


def test_the_worker_prepares_exactly_what_the_pass_thread_prepares(
    settings: Settings, worker: PrepareWorker
) -> None:
    db = open_db(settings.ledger.path)
    stage_page(new_pipeline(settings, db), *CASES)
    ready = outbox.ready_cases(db, datetime.now(UTC), 100)
    assert {r.case_id for r in ready} == {raw["id"] for raw in CASES}

    worker.submit([(r.case_id, r.widget_id) for r in ready])
    got = worker.receive()

    here = CasePreparer(settings, KEY)
    expected = [here.prepare_stored(r.case_id, r.widget_id, r.raw_json) for r in ready]
    for prepared in expected:  # the worker sends tickets encoded, as they are posted
        if isinstance(prepared.ticket, ImportTicket):
            prepared.ticket = EncodedTicket.of(prepared.ticket)
    assert got == expected
    by_id = {p.case_id: p for p in got}
    assert by_id["eu-refused"].terminal is not None  # withheld, not a ticket
    assert by_id["offline"].terminal is not None  # ignored
    assert by_id["card"].ticket is not None
    assert b"4111 1111 1111 1111" not in ticket_json(by_id["card"].ticket)


def _sync_tickets(settings: Settings, apis: FakeApis, ledger: Path, *, worker: bool) -> Any:
    apis.tickets.clear()
    apis.jobs.clear()
    if not ledger.exists():
        fakes.create_ledger(ledger)
    changed = settings.model_copy(
        update={
            "pipeline": settings.pipeline.model_copy(update={"prepare_process": worker}),
            "ledger": settings.ledger.model_copy(update={"path": ledger}),
        }
    )
    result = service.sync(changed)
    tickets = {t["external_id"]: {k: v for k, v in t.items() if k != "id"} for t in apis.tickets}
    db = open_db(ledger)
    transfers = sorted(
        db.execute(
            # The person's reference (each ledger keys chat rows by a random month key).
            "SELECT case_id, legal_basis, (SELECT lookup_ref FROM subject_periods p "
            "WHERE p.chain_ref = transfers.subject_ref), origin_country, consent_value, "
            "redactions FROM transfers WHERE event = 'transfer'"
        ).fetchall()
    )
    status = dict(db.execute("SELECT case_id, status || ':' || COALESCE(reason, '') FROM cases"))
    return result.counts.as_dict(), tickets, transfers, status


def test_a_pass_with_the_worker_sends_and_records_what_one_without_it_does(
    settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    apis.add_cases("w1", [*CASES, *many(230)])
    without = _sync_tickets(settings, apis, tmp_path / "a.db", worker=False)
    with_worker = _sync_tickets(settings, apis, tmp_path / "b.db", worker=True)
    assert with_worker == without
    counts, tickets, transfers, _ = with_worker
    assert counts["created"] == len(tickets) == 234  # 230 + eu-consent, us, card, bad-email
    assert len(transfers) == 233  # every EU or unknown-origin ticket; "us" is not restricted


def test_a_case_restaged_after_it_was_prepared_ahead_goes_out_as_restaged(
    settings: Settings, worker: PrepareWorker
) -> None:
    db = open_db(settings.ledger.path)
    p = new_pipeline(settings, db, worker)
    first = make_case("c1", started=recent(180), messages=[("", "old text")])
    stage_page(p, make_case("c0", started=recent(190)), first)
    [(item, _)] = p.cases.take(1, exclude=[])  # c0; c1 is prepared ahead meanwhile
    assert item.case_id == "c0"
    assert p.cases.reserved("c1")
    later = make_case("c1", started=recent(180), messages=[("", "new text")])
    stage_page(p, later)  # a later fetch refreshed c1's payload
    [(item, prepared)] = p.cases.take(1, exclude=["c0"])
    assert item.case_id == "c1"
    assert prepared.ticket is not None
    text = json.loads(ticket_json(prepared.ticket))["comments"][0]["value"]
    assert "new text" in text and "old text" not in text


def test_a_killed_worker_is_replaced_by_the_pass_thread_and_no_case_is_lost_or_doubled(
    settings: Settings, worker: PrepareWorker
) -> None:
    db = open_db(settings.ledger.path)
    p = new_pipeline(settings, db, worker)
    stage_page(p, *many(250))
    batches = [take(p)]
    assert batches[0] is not None
    os.kill(worker.pid, signal.SIGKILL)
    with capture_logs() as logs:
        while (batch := take(p)) is not None:
            batches.append(batch)
    sent = [case_id for batch, _, _ in batches for case_id in batch.case_ids]
    assert sorted(sent) == sorted(f"c{i:03d}" for i in range(250))  # once each
    assert [e["event"] for e in logs].count("prepare_worker_failed") == 1
    assert p.cases.worker is None


class RefusingWorker:
    """A stateful fake: prepares like the real worker, but refuses the first request."""

    def __init__(self, settings: Settings, db: Any) -> None:
        self.preparer = CasePreparer(settings, KEY)
        self.db = db
        self.asked: list[list[tuple[str, str]]] = []
        self.answered = 1  # started: no stealing

    def has_answer(self) -> bool:
        return bool(self.asked)

    def stuck(self) -> bool:
        return False

    def abandon(self) -> None:
        raise AssertionError("a refused request must not put the worker out of use")

    def submit(self, cases: list[tuple[str, str]]) -> None:
        self.asked.append(list(cases))

    def receive(self, timeout: float = 60) -> list[Prepared]:
        cases = self.asked.pop(0)
        if not hasattr(self, "refused"):
            self.refused = True
            raise RequestFailed("prepare worker: ValueError: boom")
        raw = dict(self.db.execute("SELECT case_id, raw FROM cases"))
        return [self.preparer.prepare_stored(c, w, raw[c]) for c, w in cases]


def test_a_refused_request_is_prepared_on_the_pass_thread(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    fake = RefusingWorker(settings, db)
    p = new_pipeline(settings, db, fake)
    stage_page(p, *many(150))
    with capture_logs() as logs:
        first = take(p)
        second = take(p)
    assert first is not None and second is not None
    assert len(first[1]) == 100 and len(second[1]) == 50
    assert sorted(first[0].case_ids + second[0].case_ids) == [f"c{i:03d}" for i in range(150)]
    assert "prepare_worker_request_failed" in [e["event"] for e in logs]
    assert p.cases.worker is fake  # still in use: only that request was refused


def test_a_worker_that_cannot_start_leaves_the_pass_to_prepare_alone(
    settings: Settings, apis: FakeApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with pytest.raises(WorkerError, match="cannot start the prepare worker"):
        PrepareWorker.start(settings, KEY)
    apis.add_cases("w1", CASES)
    with capture_logs() as logs:
        result = service.sync(settings)
    assert result.counts.created == 4
    assert "prepare_worker_unavailable" in [e["event"] for e in logs]


def test_the_worker_ignores_ctrl_c_and_exits_when_the_pass_closes_it(
    settings: Settings, worker: PrepareWorker
) -> None:
    db = open_db(settings.ledger.path)
    stage_page(new_pipeline(settings, db), CASES[0])
    # Its own process group: a terminal's Ctrl-C goes to the pass only.
    assert os.getpgid(worker.pid) != os.getpgid(0)
    for _ in range(2):
        worker.submit([("eu-consent", "w1")])
        [prepared] = worker.receive()
        assert prepared.ticket is not None
        os.kill(worker.pid, signal.SIGINT)  # and a SIGINT sent to it is ignored
        time.sleep(0.1)
    worker.close()
    assert worker.exit_code == 0


class SlowWorker(RefusingWorker):
    """Answers only when ``release`` says so (as a busy worker would)."""

    def __init__(self, settings: Settings, db: Any) -> None:
        super().__init__(settings, db)
        self.refused = True  # no refusal here
        self.release = 0

    def has_answer(self) -> bool:
        return bool(self.asked) and self.release > 0

    def receive(self, timeout: float = 60) -> list[Prepared]:
        self.release -= 1
        return super().receive(timeout)


def test_while_fetching_a_batch_the_worker_has_not_prepared_is_not_waited_for(
    settings: Settings,
) -> None:
    db = open_db(settings.ledger.path)
    slow = SlowWorker(settings, db)
    p = new_pipeline(settings, db, slow)
    cases = many(250)
    stage_page(p, *cases[:150])  # asked for as 100 + 50
    slow.release = 2
    first = take(p)
    assert first is not None and len(first[1]) == 100
    stage_page(p, *cases[150:])  # asked for as one more request, not answered yet
    # The 50 answered cases cannot fill a batch: given back, not sent half-empty or lost.
    assert p.next_batch(wait=False) is None
    assert p.cases.ready_ahead == 50 and p.cases.requests_out
    slow.release = 10
    rest = [take(p), take(p)]
    assert [len(batch[1]) for batch in rest if batch] == [100, 50]
    sent = first[0].case_ids + [c for batch in rest if batch for c in batch[0].case_ids]
    assert sorted(sent) == [f"c{i:03d}" for i in range(250)]  # each exactly once


def test_encoded_tickets_make_the_create_many_body_models_make(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    stage_page(new_pipeline(settings, db), *CASES)
    here = CasePreparer(settings, KEY)
    ready = outbox.ready_cases(db, datetime.now(UTC), 100)
    models = [
        t
        for t in (here.prepare_stored(r.case_id, r.widget_id, r.raw_json).ticket for r in ready)
        if isinstance(t, ImportTicket)
    ]
    assert len(models) == 4
    whole = dumps_bytes({"tickets": [t.model_dump(mode="json", exclude_none=True) for t in models]})
    assert create_many_body(models) == whole  # what the client sent before, byte for byte
    assert create_many_body([EncodedTicket.of(t) for t in models]) == whole
    mixed = [EncodedTicket.of(models[0]), *models[1:]]
    assert create_many_body(mixed) == whole


class UnreachableWorker(RefusingWorker):
    """A worker whose socket broke: every request fails to go out."""

    def __init__(self, settings: Settings, db: Any) -> None:
        super().__init__(settings, db)
        self.abandoned = False

    def submit(self, cases: list[tuple[str, str]]) -> None:
        raise WorkerError("prepare worker unreachable: [Errno 32] Broken pipe")

    def abandon(self) -> None:
        self.abandoned = True


def test_a_worker_that_cannot_be_asked_leaves_full_batches_to_the_pass_thread(
    settings: Settings,
) -> None:
    db = open_db(settings.ledger.path)
    broken = UnreachableWorker(settings, db)
    p = new_pipeline(settings, db, broken)
    stage_page(p, *many(150))
    with capture_logs() as logs:
        first, second = take(p), take(p)
    assert first is not None and second is not None
    assert [len(first[1]), len(second[1])] == [100, 50]  # full batches, not cut short
    assert "prepare_worker_failed" in [e["event"] for e in logs]
    assert broken.abandoned and p.cases.worker is None


def test_the_worker_runs_ahead_while_the_pass_reads_none_of_its_answers(
    settings: Settings, worker: PrepareWorker
) -> None:
    """Its answers (a batch of encoded tickets, larger than a socket pair's buffer) are taken
    off the socket as they come: the child prepares every request sent, not one or two, while
    the pass's thread is busy elsewhere; then they are received in order, unchanged."""
    db = open_db(settings.ledger.path)
    # Long transcripts: each answer is far above the ~0.2 MB a socket pair buffers.
    long_chat = [("", "word " * 2_000), ("Agent Smith", "answer " * 2_000)] * 3
    raws = [
        make_case(f"big{i:03d}", started=recent(300 - i), messages=long_chat) for i in range(60)
    ]
    stage_page(new_pipeline(settings, db), *raws)
    ready = outbox.ready_cases(db, datetime.now(UTC), 100)
    chunks = [ready[offset : offset + 10] for offset in range(0, len(ready), 10)]
    for chunk in chunks:
        worker.submit([(r.case_id, r.widget_id) for r in chunk])
    for _ in range(500):  # bounded: a child blocked on a full socket fails here, not hangs
        if worker.answers_waiting == len(chunks):
            break
        time.sleep(0.02)
    assert worker.answers_waiting == len(chunks), "the worker did not answer every request"

    got = [worker.receive() for _ in chunks]
    assert [[p.case_id for p in answer] for answer in got] == [
        [r.case_id for r in chunk] for chunk in chunks
    ]
    sizes = [sum(len(ticket_json(p.ticket)) for p in answer if p.ticket) for answer in got]
    assert min(sizes) > 300_000
    worker.close()
    assert worker.exit_code == 0


def test_a_worker_that_dies_with_requests_out_is_reported_not_waited_for(
    settings: Settings, worker: PrepareWorker
) -> None:
    db = open_db(settings.ledger.path)
    stage_page(new_pipeline(settings, db), CASES[0])
    worker.submit([("eu-consent", "w1")])
    worker.receive()
    os.kill(worker.pid, signal.SIGSTOP)  # the next request stays unanswered
    worker.submit([("eu-consent", "w1")])
    os.kill(worker.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(WorkerError, match="stopped"):
        worker.receive(timeout=30)
    assert time.monotonic() - started < 5
    assert worker.broken


def test_answers_left_waiting_do_not_make_the_worker_look_stuck(settings: Settings) -> None:
    """A pass paused by the rate limit may leave an answer untaken for a long time: only a
    request still unanswered after the timeout means the worker is stuck."""
    db = open_db(settings.ledger.path)
    stage_page(new_pipeline(settings, db), CASES[0])
    clock = FakeClock()
    worker = PrepareWorker.start(settings, KEY, monotonic=clock)
    try:
        worker.submit([("eu-consent", "w1")])
        for _ in range(500):  # bounded
            if worker.answers_waiting:
                break
            time.sleep(0.01)
        assert worker.answers_waiting == 1
        clock.advance(2 * prepare_worker.REPLY_TIMEOUT_SECONDS)
        assert not worker.stuck()  # answered, just not taken
        os.kill(worker.pid, signal.SIGSTOP)  # the next request gets no answer
        worker.submit([("eu-consent", "w1")])
        assert not worker.stuck()
        clock.advance(2 * prepare_worker.REPLY_TIMEOUT_SECONDS)
        assert worker.stuck()
        os.kill(worker.pid, signal.SIGCONT)
        assert [p.case_id for p in worker.receive()] == ["eu-consent"]
    finally:
        worker.close()
