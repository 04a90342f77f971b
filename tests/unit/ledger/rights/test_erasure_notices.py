"""Art. 19 notices are chained in the erasure's own transaction (issue 27 item 2): an erasure
is in the ledger with its notices or neither is, whatever stops the run in between; the
notices reach the rights journal with the erasure, so a restored backup gets them back; the
recipients of kind other are to be told."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from snapzen.commands import erase, erase_request
from snapzen.commands.erase_request import RequestInfo
from snapzen.ledger.evidence import verify
from snapzen.ledger.rights import erasure_journal, notices, requests
from snapzen.ledger.rights.erasure_reapply import reapply
from snapzen.ledger.store.db import open_db, transaction
from tests.integration.ledger.test_erase import ALICE_REF, ALICE_TICKETS, FakeZendesk
from tests.ledger_fixtures import KEY

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _started(db: sqlite_utils.Database, days_ago: int) -> None:
    """Alice's chats started ``days_ago`` before NOW (SnapEngage still holds them)."""
    stamp = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with transaction(db) as conn:
        conn.execute("UPDATE cases SET started_at = ? WHERE subject_ref = ?", (stamp, ALICE_REF))


def _request(journal: Path, others: tuple[str, ...] = ()) -> RequestInfo:
    return RequestInfo(
        request_id=requests.new_request_id(), kind="erasure", received_on=date(2026, 11, 20),
        journal=journal, journal_key=KEY, snapengage_days=60, others=others,
    )  # fmt: skip


def _events(db: sqlite_utils.Database, event: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT case_id, recipient, details FROM events WHERE event = ? ORDER BY seq", (event,)
    ).fetchall()


def test_a_kill_before_the_commit_leaves_neither_and_the_rerun_records_both(
    db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _started(db, 10)
    journal = tmp_path / "ledger.db.erasures.jsonl"
    zendesk = FakeZendesk(range(1001, 1011))
    real = notices.record

    def killed(conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> Any:
        real(conn, *args, **kwargs)  # appended, not committed yet
        raise KeyboardInterrupt  # the run stops here (Ctrl-C, SIGTERM's handler)

    monkeypatch.setattr(erase_request.notices, "record", killed)
    with pytest.raises(KeyboardInterrupt):
        erase.erase_subject(db, ALICE_REF, zendesk, request=_request(journal), now=NOW)
    assert not set(ALICE_TICKETS) & zendesk.tickets  # deleted in Zendesk...
    for event in ("erased", "request", notices.EVENT):  # ...but neither recorded
        assert _events(db, event) == [], event
    assert not journal.exists() or erasure_journal.read(journal, KEY).requests == []

    monkeypatch.setattr(erase_request.notices, "record", real)
    request = _request(journal)
    result = erase.erase_subject(db, ALICE_REF, zendesk, request=request, now=NOW)
    assert sorted(result.deleted) == ALICE_TICKETS  # found gone: counted and recorded now
    assert len(_events(db, "erased")) == len(ALICE_TICKETS)
    told = [(case_id, recipient) for case_id, recipient, _ in _events(db, notices.EVENT)]
    assert told == [(request.request_id, "Zendesk"), (request.request_id, "SnapEngage")]
    assert [n.seq for n in result.notices or []] == [
        r[0] for r in db.execute("SELECT seq FROM events WHERE event = ?", (notices.EVENT,))
    ]
    assert verify.verify_ledger(db.conn).ok


def test_notices_are_journalled_and_come_back_with_a_restored_backup(
    db: sqlite_utils.Database, ledger_path: Path, tmp_path: Path
) -> None:
    _started(db, 10)
    backup = tmp_path / "backup.db"
    target = sqlite3.connect(backup)
    db.conn.backup(target)
    target.close()
    journal = tmp_path / "ledger.db.erasures.jsonl"
    request = _request(journal, others=("Acme CRM",))
    erase.erase_subject(db, ALICE_REF, FakeZendesk(range(1001, 1011)), request=request, now=NOW)
    before = notices.for_subject(db.conn, ALICE_REF)
    assert [(n.recipient, n.status) for n in before] == [
        ("Zendesk", notices.NOTIFIED), ("SnapEngage", notices.TO_NOTIFY),
        ("Acme CRM", notices.TO_NOTIFY),
    ]  # fmt: skip
    assert "Acme CRM" in before[2].how and "case-3" in before[2].how

    restored = open_db(backup)
    contents = erasure_journal.read(journal, KEY)
    assert notices.for_subject(restored.conn, ALICE_REF) == []
    reapply(restored, contents.erasures, requests=contents.requests, now=NOW)
    again = notices.for_subject(restored.conn, ALICE_REF)
    assert [(n.recipient, n.status, n.on, n.how) for n in again] == [
        (n.recipient, n.status, n.on, n.how) for n in before
    ]
    # Re-applying twice adds nothing; the chain still verifies.
    reapply(restored, contents.erasures, requests=contents.requests, now=NOW)
    assert len(notices.for_subject(restored.conn, ALICE_REF)) == 3
    assert verify.verify_ledger(restored.conn).ok


def test_a_chat_snapengage_no_longer_holds_gets_no_snapengage_notice(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    _started(db, 61)  # SnapEngage keeps a chat 60 days
    request = _request(tmp_path / "j.jsonl")
    result = erase.erase_subject(
        db, ALICE_REF, FakeZendesk(range(1001, 1011)), request=request, now=NOW
    )
    assert [n.recipient for n in result.notices or []] == ["Zendesk"]


def test_a_rerun_does_not_owe_the_same_notice_twice_but_lists_it_again(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    _started(db, 10)
    zendesk = FakeZendesk(range(1001, 1011))
    journal = tmp_path / "j.jsonl"
    first = erase.erase_subject(db, ALICE_REF, zendesk, request=_request(journal), now=NOW)
    [owed] = [n for n in first.notices or [] if n.status == notices.TO_NOTIFY]
    later = NOW + timedelta(days=1)
    again = erase.erase_subject(db, ALICE_REF, zendesk, request=_request(journal), now=later)
    assert [(n.recipient, n.notice_id) for n in again.notices or []] == [
        ("SnapEngage", owed.notice_id)
    ]
    assert [n.notice_id for n in notices.open_notices(db.conn)] == [owed.notice_id]
