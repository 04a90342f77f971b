"""A request step or an Art. 19 notice recorded with --wait is recorded at the time it is
appended, after the writer lock came free, not at the time the command started waiting.

Another run may hold the lock for long (a backfill slice, a restore): the step's day is the
day the clock says when the event is chained (a pause, a resume or an answer that waited past
midnight happened on the next day), and the chain's times do not go back behind the rows the
other run appended meanwhile. Here the wait is the seam `locked` (snapzen.commands.ledger_open):
the clock moves on while it waits, as it would behind another holder of the lock; the ledger,
its journal and the request clock are real.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.commands import ledger_open, request_desk
from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.rights import notices, requests
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings, load_settings
from tests.ledger_fixtures import ALICE, KEY, KEY_TEXT

WAITED = timedelta(days=2)  # how long another run held the writer lock


@pytest.fixture
def settings(ledger_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    return load_settings()


def wait_moves_the_clock(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    """``module``'s writer lock comes free only once the clock has moved on by WAITED."""

    def waited(settings: Settings, wait_seconds: float) -> AbstractContextManager[object]:
        moved = clock.offset() + WAITED  # each wait as long
        monkeypatch.setenv(clock.OFFSET_VARIABLE, str(moved.total_seconds()))
        return ledger_open.locked(settings, wait_seconds)

    monkeypatch.setattr(module, "locked", waited)


def recorded_on(ledger: Path, seq: int) -> date:
    db = open_db(ledger)
    try:
        (at,) = db.execute("SELECT recorded_at FROM events WHERE seq = ?", (seq,)).fetchone()
    finally:
        db.conn.close()
    return date.fromisoformat(str(at)[:10])


def test_a_request_step_is_dated_when_it_is_chained_after_the_wait(
    settings: Settings, ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = clock.now().date()
    wait_moves_the_clock(monkeypatch, request_desk)
    opened = request_desk.open_request(
        settings, kind="access", received=today.isoformat(), email=None, case="case-1",
        ticket=None, actor="dpo", wait_seconds=-1,
    )  # fmt: skip
    assert recorded_on(ledger_path, opened.seqs[-1]) == today + WAITED
    later = today + 2 * WAITED

    paused = request_desk.step(
        settings, opened.request_id, request_desk.STEPS["paused"], reason="identity",
        actor="dpo", wait_seconds=-1,
    )  # fmt: skip
    assert recorded_on(ledger_path, paused.seqs[-1]) == later
    assert paused.clock is not None and paused.clock.paused_since == later

    closed = request_desk.step(
        settings, opened.request_id, request_desk.STEPS["closed"], outcome="provided",
        note=None, actor="dpo", wait_seconds=-1,
    )  # fmt: skip
    assert recorded_on(ledger_path, closed.seqs[-1]) == later + WAITED
    assert closed.clock is not None and closed.clock.closed_on == later + WAITED


def test_an_extension_without_a_reason_is_refused_and_nothing_is_recorded(
    settings: Settings, ledger_path: Path
) -> None:
    opened = request_desk.open_request(
        settings, kind="access", received=clock.now().date().isoformat(), email=None,
        case="case-1", ticket=None, actor="dpo", wait_seconds=-1,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="--reason is empty: the person must be told why"):
        request_desk.step(
            settings, opened.request_id, request_desk.STEPS["extended"], reason="  ", months=2,
            actor="dpo", wait_seconds=-1,
        )  # fmt: skip
    db = open_db(ledger_path)
    try:
        events = [r[0] for r in db.execute("SELECT event FROM events WHERE case_id = ?",
                                           (opened.request_id,))]  # fmt: skip
    finally:
        db.conn.close()
    assert events == ["request"]  # no request_extended
    extended = request_desk.step(
        settings, opened.request_id, request_desk.STEPS["extended"], reason="many tickets",
        months=1, actor="dpo", wait_seconds=-1,
    )  # fmt: skip
    assert extended.extended_months == 1 and extended.details["reason"] == "many tickets"


def test_a_notice_done_is_dated_when_it_is_chained_after_the_wait(
    settings: Settings, ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today, ref = clock.now().date(), subject_ref(KEY, ALICE)
    assert ref is not None
    db: sqlite_utils.Database = open_db(ledger_path)
    try:
        with transaction(db) as conn:
            [owed] = notices.record(
                requests.Recorder(conn, "dpo", clock.now()),
                [notices.Notice("SnapEngage", notices.TO_NOTIFY, today.isoformat(), "erase it")],
                request_id="req-waited",
                subject_ref=ref,
            )
    finally:
        db.conn.close()
    wait_moves_the_clock(monkeypatch, request_desk)

    told = request_desk.record_told(
        settings, owed.notice_id, when=today.isoformat(), actor="dpo", wait_seconds=-1
    )
    assert told.seq is not None and recorded_on(ledger_path, told.seq) == today + WAITED
