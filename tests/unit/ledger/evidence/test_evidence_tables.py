"""Issue 23 item 8: the key binding and the tables verify and restore rely on are chained or
checked against the chain; a row deleted or edited is named, with its table."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from snapzen.commands import erase
from snapzen.commands.erase_request import RequestInfo
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.store.case_flags import (
    DUPLICATE_TICKETS,
    flag_duplicates,
    open_flags,
    resolve_flag,
)
from snapzen.ledger.store.db import LedgerError, create_ledger, open_db, transaction
from snapzen.ledger.store.identity import key_fingerprint, read_meta
from tests.integration.ledger.test_erase import ALICE_REF, FakeZendesk
from tests.ledger_fixtures import KEY, append, transfer_fields

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def bound(tmp_path: Path) -> Path:
    """A ledger made by `init` (bound to KEY), with an erasure and a flagged case."""
    path = tmp_path / "ledger.db"
    db = create_ledger(path, KEY, NOW)
    append(db, (transfer_fields(i) for i in range(1, 11)))
    request = RequestInfo("req-1", "erasure", date(2026, 11, 30), tmp_path / "rights.jsonl", KEY)
    erase.erase_subject(db, ALICE_REF, FakeZendesk(range(1001, 1011)), request=request, now=NOW)
    flag_duplicates(db, "case-1", [1001, 1100], NOW, source="recovery")
    flag_duplicates(db, "case-1", [1001, 1100], NOW, source="recovery")  # a refresh
    assert agreement.check_tables(db.conn).problems == []
    assert verify.verify_ledger(db.conn).ok
    db.conn.close()
    return path


def _kinds(path: Path) -> list[tuple[str, str]]:
    db = open_db(path, read_only=True)
    try:
        return [(p.kind, p.message) for p in agreement.check_tables(db.conn).problems]
    finally:
        db.conn.close()


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("DELETE FROM ledger_meta WHERE name = 'key_fingerprint'", "ledger_meta"),
        ("UPDATE ledger_meta SET value = 'x' WHERE name = 'ledger_id'", "ledger_meta"),
        ("DELETE FROM erased_subjects", "erased_subjects"),
        ("UPDATE erased_subjects SET erased_at = '2000-01-01T00:00:00Z'", "erased_subjects"),
        ("DELETE FROM case_flags", "case_flags"),
    ],
)
def test_a_deleted_or_edited_evidence_row_is_named_with_its_table(
    bound: Path, sql: str, table: str
) -> None:
    with sqlite3.connect(bound) as conn:
        conn.execute(sql)
    problems = _kinds(bound)
    assert problems and {kind for kind, _ in problems} == {table}
    assert all(message.startswith(f"{table}:") for _, message in problems)


def test_a_flag_refreshed_unchanged_is_chained_once(bound: Path) -> None:
    with sqlite3.connect(bound) as conn:
        count = conn.execute("SELECT count(*) FROM events WHERE event = 'case_flagged'")
        assert count.fetchone() == (1,)


def test_another_keys_backup_without_its_binding_row_is_still_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-key.db"
    create_ledger(other, b"another-ledger-key-0123456789", NOW).conn.close()
    with sqlite3.connect(other) as conn:  # hide the binding the opener compares
        conn.execute("DELETE FROM ledger_meta")
    with pytest.raises(LedgerError, match=r"different ledger\.key"):
        open_db(other, read_only=True, key=KEY)
    with pytest.raises(LedgerError, match=r"different ledger\.key"):
        open_db(other, key=KEY)  # nor bound anew by a writer
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_meta").fetchone() == (0,)


def test_the_chained_binding_decides_over_an_edited_table(bound: Path) -> None:
    with sqlite3.connect(bound) as conn:
        conn.execute("UPDATE ledger_meta SET value = 'forged' WHERE name = 'key_fingerprint'")
        assert read_meta(conn)["key_fingerprint"] != "forged"
    open_db(bound, key=KEY).conn.close()  # the right key still opens it


def test_a_binding_made_before_it_was_chained_is_chained_at_the_next_write(
    bound: Path,
) -> None:
    with sqlite3.connect(bound) as conn:  # `init` chains it as the ledger's first row
        assert conn.execute("SELECT seq FROM events WHERE event = 'ledger_bound'").fetchall() == [
            (1,)
        ]
    older = bound.with_name("older.db")  # bound by an older snapzen: the table only
    open_db(older, create=True).conn.close()
    with sqlite3.connect(older) as conn:
        conn.executemany(
            "INSERT INTO ledger_meta (name, value) VALUES (?, ?)",
            [("ledger_id", "id-1"), ("key_fingerprint", key_fingerprint(KEY, "id-1")),
             ("bound_by", "init")],
        )  # fmt: skip
    open_db(older, key=KEY).conn.close()  # a writer chains it, once
    open_db(older, key=KEY).conn.close()
    with sqlite3.connect(older) as conn:
        count = conn.execute("SELECT count(*) FROM events WHERE event = 'ledger_bound'")
        assert count.fetchone() == (1,)
        conn.execute("DELETE FROM ledger_meta WHERE name = 'key_fingerprint'")
    assert [kind for kind, _ in _kinds(older)] == ["ledger_meta"]
    with pytest.raises(LedgerError, match="different"):
        open_db(older, key=b"another-ledger-key-0123456789")


def _resolve(path: Path) -> None:
    db = open_db(path, key=KEY)
    with transaction(db) as conn:
        how = {"resolved_by": "person", "reason": "both kept on purpose"}
        assert resolve_flag(conn, "case-1", DUPLICATE_TICKETS, NOW, actor="dpo", details=how)
    db.conn.close()


def test_a_flag_resolved_through_the_chain_agrees_and_one_closed_by_hand_is_named(
    bound: Path,
) -> None:
    _resolve(bound)
    assert _kinds(bound) == []
    with sqlite3.connect(bound) as conn:  # re-opened by hand: the alarm the chain closed
        conn.execute("UPDATE case_flags SET resolved_at = NULL")
    assert _kinds(bound) == [
        ("case_flags", "case_flags: flag duplicate_tickets of case case-1 is open, the chain "
         "resolved it"),
    ]  # fmt: skip


def test_a_resolved_at_set_by_hand_without_its_event_is_named(bound: Path) -> None:
    with sqlite3.connect(bound) as conn:  # silencing `status`'s alarm with one UPDATE
        conn.execute("UPDATE case_flags SET resolved_at = '2026-12-02T00:00:00Z'")
    assert _kinds(bound) == [
        ("case_flags", "case_flags: flag duplicate_tickets of case case-1 is resolved without "
         "a case_flag_resolved event"),
    ]  # fmt: skip


def test_a_flag_raised_again_after_resolution_reopens_chained(bound: Path) -> None:
    _resolve(bound)
    db = open_db(bound, key=KEY)
    flag_duplicates(db, "case-1", [1001, 1100], NOW, source="recovery")  # the same tickets
    assert [f["case_id"] for f in open_flags(db)] == ["case-1"]
    events = db.conn.execute(
        "SELECT event FROM events WHERE case_id = 'case-1' AND event LIKE 'case_flag%' ORDER BY seq"
    ).fetchall()
    assert events == [("case_flagged",), ("case_flag_resolved",), ("case_flagged",)]
    db.conn.close()
    assert _kinds(bound) == []
