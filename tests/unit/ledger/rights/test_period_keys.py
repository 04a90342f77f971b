"""Period keys and forgetting a month (issue 27 item 4), on a real SQLite ledger: a chat's
chain reference is keyed by its month; forgetting the month destroys the key, deletes its
cases and leaves a chain that verifies but links nobody; a crash inside the forgetting
changes nothing; a restored backup does not bring a forgotten month back."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from snapzen.ledger.evidence import audit, verify
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.rights import erasure_journal, forget, holds, period_keys
from snapzen.ledger.rights.erasure_reapply import JournalChoice, restore_union
from snapzen.ledger.rights.journal_file import create_empty
from snapzen.ledger.rights.subjects import subject_ref
from snapzen.ledger.store.db import open_db, transaction
from tests.ledger_fixtures import ALICE, BOB, KEY

# The injected clock of these tests: two years and a few months after the chats.
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
AS_OF = NOW.date()
YEARS = 2
ALICE_REF = subject_ref(KEY, ALICE)
BOB_REF = subject_ref(KEY, BOB)
assert ALICE_REF is not None and BOB_REF is not None


def _chat(
    db: sqlite_utils.Database, case_id: str, day: str, ref: str, ticket: int, **case: Any
) -> None:
    """A synced chat as the sync records it: its cases row, then its chained decision."""
    stamp = f"{day}T10:00:00Z"
    with transaction(db) as conn:
        conn.execute(
            """INSERT INTO cases (case_id, widget_id, day, started_at, status, ticket_id,
                   subject_ref, first_seen_at, updated_at, synced_at, expired_at)
               VALUES (?, 'w1', ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                case_id, day, stamp, case.get("status", "synced"), ticket, ref, stamp, stamp,
                stamp, case.get("expired_at"),
            ),
        )  # fmt: skip
        append_events(
            conn,
            [
                {
                    "event": "transfer",
                    "case_id": case_id,
                    "widget_id": "w1",
                    "subject_ref": ref,
                    "ticket_id": ticket,
                    "recorded_at": stamp,
                    "retention_until": f"{int(day[:4]) + 2}{day[4:]}",
                }
            ],
        )


def _expire(db: sqlite_utils.Database, *case_ids: str) -> None:
    with transaction(db) as conn:
        for case_id in case_ids:
            conn.execute(
                "UPDATE cases SET expired_at = '2026-03-01T00:00:00Z' WHERE case_id = ?",
                (case_id,),
            )


@pytest.fixture
def two_months(tmp_path: Path) -> sqlite_utils.Database:
    """Alice chatted in January and February 2024, Bob in January only."""
    db = open_db(tmp_path / "ledger.db", create=True)
    _chat(db, "jan-alice", "2024-01-10", ALICE_REF, 101)
    _chat(db, "jan-bob", "2024-01-20", BOB_REF, 102)
    _chat(db, "feb-alice", "2024-02-03", ALICE_REF, 103)
    return db


def _chained(db: sqlite_utils.Database, case_id: str) -> str:
    row = db.conn.execute(
        "SELECT subject_ref FROM events WHERE case_id = ? AND event = 'transfer'", (case_id,)
    ).fetchone()
    return str(row[0])


def _seqs(db: sqlite_utils.Database, ref: str) -> list[str]:
    return [str(row["case_id"]) for row in audit.subject_transfers(db.conn, ref)]


def test_a_chat_row_carries_a_reference_keyed_by_its_month(
    two_months: sqlite_utils.Database,
) -> None:
    db = two_months
    january, february = _chained(db, "jan-alice"), _chained(db, "feb-alice")
    # Not the ledger-key reference, and different in each month: one key per month.
    assert ALICE_REF not in (january, february) and january != february
    keys = dict(db.conn.execute("SELECT period, key FROM period_keys").fetchall())
    assert sorted(keys) == ["2024-01", "2024-02"]
    assert all(len(bytes(k)) == 32 for k in keys.values()) and keys["2024-01"] != keys["2024-02"]
    assert january == period_keys.chain_ref(bytes(keys["2024-01"]), ALICE_REF)
    # A lookup by the person's reference finds every month's rows.
    assert _seqs(db, ALICE_REF) == ["jan-alice", "feb-alice"]
    assert _seqs(db, BOB_REF) == ["jan-bob"]


def test_a_month_is_forgotten_once_every_ticket_of_it_has_expired(
    two_months: sqlite_utils.Database,
) -> None:
    db = two_months
    assert forget.plan(db.conn, AS_OF, YEARS, holds.HoldSet()) == []  # tickets still live
    _expire(db, "jan-alice")
    assert forget.plan(db.conn, AS_OF, YEARS, holds.HoldSet()) == []  # Bob's still live
    # A dry run counts the tickets the sweep is about to delete as gone.
    assumed = forget.plan(db.conn, AS_OF, YEARS, holds.HoldSet(), {"jan-bob"})
    assert assumed == [{"period": "2024-01", "cases": 2}]
    _expire(db, "jan-bob", "feb-alice")
    # Both months' retention has ended for their last day (2024-02-29 + 2 years is
    # 2026-02-28, before 2026-03-05): both are due.
    assert [p["period"] for p in forget.plan(db.conn, AS_OF, YEARS, holds.HoldSet())] == [
        "2024-01",
        "2024-02",
    ]
    # As of 2026-02-27, February's last chats are not past retention yet.
    early = forget.plan(db.conn, date(2026, 2, 27), YEARS, holds.HoldSet())
    assert [p["period"] for p in early] == ["2024-01"]

    january_ref = _chained(db, "jan-alice")
    details = forget.forget_period(db, "2024-01", now=NOW, actor="cron", run_id="r1")
    assert details == {
        "period": "2024-01",
        "cases_forgotten": 2,
        "case_ids": ["jan-alice", "jan-bob"],
        "references_unlinked": 2,
        "key_destroyed": True,
        "by": "retention sweep",
    }
    periods = [r[0] for r in db.conn.execute("SELECT period FROM period_keys")]
    assert periods == ["2024-02"]
    assert db.conn.execute("SELECT case_id FROM cases").fetchall() == [("feb-alice",)]
    # The rows stay in the chain, which still verifies; nobody can link them any more.
    assert _chained(db, "jan-alice") == january_ref
    assert verify.verify_ledger(db.conn).ok
    assert _seqs(db, ALICE_REF) == ["feb-alice"] and _seqs(db, BOB_REF) == []
    event = db.conn.execute(
        "SELECT record FROM events WHERE event = 'period_forgotten'"
    ).fetchone()[0]
    for reference in (ALICE_REF, BOB_REF, january_ref, _chained(db, "jan-bob")):
        assert reference not in event  # the event names the month and counts, never anyone
    assert forget.forgotten(db.conn) == {"2024-01": "2026-03-05"}
    note = forget.note(db.conn)
    assert note is not None and "2024-01 were forgotten on 2026-03-05" in note


@pytest.mark.parametrize("keeper", ["pending", "hold_case", "hold_subject"])
def test_a_pending_chat_or_a_hold_keeps_the_month(
    two_months: sqlite_utils.Database, keeper: str
) -> None:
    db = two_months
    _expire(db, "jan-alice", "jan-bob")
    held = holds.HoldSet()
    if keeper == "pending":
        with transaction(db) as conn:
            conn.execute(
                """INSERT INTO cases (case_id, widget_id, day, status, first_seen_at,
                       updated_at) VALUES ('jan-late', 'w1', '2024-01-31', 'pending', 'x', 'x')"""
            )
    elif keeper == "hold_case":
        held.holds.append(holds.Hold("case:jan-bob", "claim", "2026-01-01", 1))
    else:
        held.holds.append(holds.Hold(f"subject:{BOB_REF}", "claim", "2026-01-01", 1))
    assert forget.plan(db.conn, AS_OF, YEARS, held) == []


def test_a_crash_inside_the_forgetting_changes_nothing_and_the_next_sweep_finishes(
    two_months: sqlite_utils.Database, tmp_path: Path
) -> None:
    """Killed between destroying the key and deleting the cases: the transaction never
    commits, so the key, the cases and the chain are as before; the journal line written
    first makes the next sweep (or a restore) finish the month."""
    db = two_months
    _expire(db, "jan-alice", "jan-bob")
    journal = tmp_path / "ledger.db.erasures.jsonl"
    create_empty(journal)
    forget.journal(journal, KEY, "2024-01", NOW)

    def crash(point: str) -> None:
        if point == "after_key_destroyed":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        forget.forget_period(db, "2024-01", now=NOW, actor="cron", run_id="r1", hook=crash)
    assert db.conn.execute("SELECT count(*) FROM period_keys").fetchone()[0] == 2
    assert db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 3
    assert forget.forgotten(db.conn) == {}
    assert _seqs(db, BOB_REF) == ["jan-bob"]

    wanted = erasure_journal.read(journal, KEY).forgotten
    done = forget.reapply(db, wanted, now=NOW, actor="cron", how="retention sweep")
    assert [d["period"] for d in done] == ["2024-01"]
    assert [r[0] for r in db.conn.execute("SELECT period FROM period_keys")] == ["2024-02"]
    assert _seqs(db, BOB_REF) == [] and verify.verify_ledger(db.conn).ok
    # Finished once: a second pass has nothing left to do.
    assert forget.reapply(db, wanted, now=NOW, actor="cron", how="x") == []


def test_a_restored_backup_does_not_bring_a_forgotten_month_back(
    two_months: sqlite_utils.Database, tmp_path: Path
) -> None:
    db = two_months
    _expire(db, "jan-alice", "jan-bob")
    backup = tmp_path / "backup.db"
    with sqlite3.connect(backup) as copy:
        db.conn.backup(copy)
    journal = tmp_path / "ledger.db.erasures.jsonl"
    create_empty(journal)
    forget.journal(journal, KEY, "2024-01", NOW)
    forget.forget_period(db, "2024-01", now=NOW, actor="cron", run_id="r1")
    db.conn.close()

    restored_path = tmp_path / "restored.db"
    shutil.copy(backup, restored_path)
    restored = open_db(restored_path)
    assert restored.conn.execute(
        "SELECT count(*) FROM period_keys WHERE period = '2024-01'"
    ).fetchone()[0]  # the backup still holds the key ...
    live = tmp_path / "live.jsonl"
    create_empty(live)
    choice = JournalChoice(journal, live, KEY)
    restore_union(restored, choice, None, now=NOW, actor="cron", command="ledger restore")
    assert list(forget.forgotten(restored.conn)) == ["2024-01"]  # ... the journal wins
    assert [r[0] for r in restored.conn.execute("SELECT period FROM period_keys")] == ["2024-02"]
    assert (
        restored.conn.execute("SELECT count(*) FROM cases WHERE day < '2024-02'").fetchone()[0] == 0
    )
    assert _seqs(restored, BOB_REF) == [] and verify.verify_ledger(restored.conn).ok
    assert erasure_journal.read(live, KEY).forgotten == {"2024-01": "2026-03-05T12:00:00Z"}


def test_legacy_references_are_indexed_under_their_month_and_forgotten_with_it(
    tmp_path: Path,
) -> None:
    """Rows chained before period keys carry the ledger-key reference itself: the
    migration indexes them under their chat's month; forgetting the month stops every
    lookup from finding them (the ledger key could still recompute them: documented)."""
    db = open_db(tmp_path / "ledger.db", create=True)
    with transaction(db) as conn:  # a ledger as an older snapzen left it
        conn.execute("DROP TABLE subject_periods")
        conn.execute("DROP TABLE period_keys")
    _chat(db, "old-bob", "2024-01-20", BOB_REF, 102)
    assert _chained(db, "old-bob") == BOB_REF  # legacy: not keyed by a month
    db.conn.executescript(period_keys.CREATE_SQL)
    with db.conn:
        assert period_keys.index_legacy(db.conn) == 1
    _chat(db, "new-bob", "2024-02-02", BOB_REF, 103)
    assert _seqs(db, BOB_REF) == ["old-bob", "new-bob"]
    _expire(db, "old-bob")
    assert forget.plan(db.conn, AS_OF, YEARS, holds.HoldSet()) == [
        {"period": "2024-01", "cases": 1}
    ]
    details = forget.forget_period(db, "2024-01", now=NOW, actor="cron", run_id=None)
    assert details["key_destroyed"] is False and details["references_unlinked"] == 1
    assert _seqs(db, BOB_REF) == ["new-bob"] and verify.verify_ledger(db.conn).ok


def test_a_reference_read_from_a_chat_row_leads_back_to_its_person_until_forgotten(
    two_months: sqlite_utils.Database,
) -> None:
    """`ledger access --case` for a chat whose cases row is gone reads the reference from the
    chain: the month-keyed one leads back to the person while the month is kept."""
    db = two_months
    january = _chained(db, "jan-bob")
    assert period_keys.lookup_of(db.conn, january) == BOB_REF
    assert period_keys.lookup_of(db.conn, BOB_REF) == BOB_REF  # a request row's reference
    _expire(db, "jan-alice", "jan-bob")
    forget.forget_period(db, "2024-01", now=NOW, actor="cron", run_id=None)
    assert period_keys.lookup_of(db.conn, january) is None
