"""Request evidence keyed by request period and forgotten on time (issue 27, gap 1), on a real
SQLite ledger: a request's rows carry a reference keyed by the month they were recorded; the
period is kept while a request of it is open, within record.request_evidence_years, owes an
Art. 19 notice, is named by a hold, or its erasure is needed by an older copy or by what
SnapEngage may still hold; once forgotten, the person's lookups find none of it, the chain
verifies, and a restored backup does not bring it back."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.ledger.evidence import verify
from snapzen.ledger.rights import (
    erasure_journal,
    erasure_reapply,
    forget,
    holds,
    journal_file,
    notices,
    period_keys,
    request_periods,
    requests,
)
from snapzen.ledger.rights.journal_file import create_empty
from snapzen.ledger.rights.request_periods import Copy, Rule
from snapzen.ledger.rights.subjects import subject_ref
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support import clock
from tests.fakes import LEDGER_KEY
from tests.ledger_fixtures import ALICE, BOB, KEY

ALICE_REF = subject_ref(KEY, ALICE)
BOB_REF = subject_ref(KEY, BOB)
assert ALICE_REF is not None and BOB_REF is not None
ASKED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)  # Alice's access request, answered at once
ERASED = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)  # her erasure request, answered at once
PERIOD = "req-2026-01"
RULE = Rule(years=6, snapengage_days=60)
LATER = date(2032, 1, 21)  # six years after the last step, to the day


def _request(
    db: sqlite_utils.Database, request_id: str, kind: str, now: datetime, status: str
) -> None:
    with transaction(db) as conn:
        outcome = "provided" if status == "closed" else ""
        requests.Recorder(conn, "dpo", now).append(
            requests.EVENT,
            request_id,
            ALICE_REF,
            requests.request_details(kind, now.date(), status, outcome),
        )


def _erase(db: sqlite_utils.Database, request_id: str = "req-erase") -> None:
    """An erasure answered the day it arrived: its request and erased_subjects row."""
    _request(db, request_id, "erasure", ERASED, "closed")
    with transaction(db) as conn:
        erasure_reapply.remember_subject(conn, str(ALICE_REF), "2026-01-20T09:00:00Z", request_id)


@pytest.fixture
def ledger(tmp_path: Path) -> sqlite_utils.Database:
    """Alice asked for access (answered) and for erasure (answered) in January 2026."""
    db = open_db(tmp_path / "ledger.db", create=True)
    _request(db, "req-access", "access", ASKED, "closed")
    _erase(db)
    return db


def _refusal(db: sqlite_utils.Database, as_of: date, rule: Rule = RULE) -> str | None:
    found = request_periods.evidence(db.conn, PERIOD)
    return request_periods.refusal(db.conn, found, as_of, rule, holds.active(db.conn))


def test_request_rows_carry_a_reference_keyed_by_their_request_period(
    ledger: sqlite_utils.Database,
) -> None:
    rows = ledger.conn.execute("SELECT subject_ref FROM events WHERE event = 'request'")
    chained = {row[0] for row in rows}
    assert ALICE_REF not in chained  # not the lookup reference the ledger key recomputes
    assert {period_keys.lookup_of(ledger.conn, ref) for ref in chained} == {ALICE_REF}
    assert [r[0] for r in ledger.conn.execute("SELECT period FROM period_keys")] == [PERIOD]
    # The person's lookups still find their requests, with their lookup reference.
    found = requests.list_requests(ledger.conn, subject_ref=ALICE_REF)
    assert {r.request_id for r in found} == {"req-access", "req-erase"}
    assert {r.subject_ref for r in found} == {ALICE_REF}
    assert requests.list_requests(ledger.conn, subject_ref=BOB_REF) == []


def test_a_period_is_kept_within_the_retention_and_forgotten_after_it(
    ledger: sqlite_utils.Database,
) -> None:
    assert _refusal(ledger, date(2032, 1, 19)) == request_periods.RETENTION
    assert _refusal(ledger, LATER) is None
    assert request_periods.plan(ledger.conn, LATER, RULE, holds.HoldSet()) == [
        {"period": PERIOD, "requests": 2}
    ]
    # The setting moves it: three years.
    assert _refusal(ledger, date(2029, 1, 21), Rule(years=3, snapengage_days=60)) is None


def test_an_open_request_keeps_its_period(ledger: sqlite_utils.Database) -> None:
    _request(ledger, "req-open", "rectification", datetime(2026, 1, 25, tzinfo=UTC), "open")
    assert _refusal(ledger, LATER) == request_periods.OPEN


def test_an_owed_art19_notice_keeps_its_period(ledger: sqlite_utils.Database) -> None:
    with transaction(ledger) as conn:
        owed = notices.Notice("SnapEngage", notices.TO_NOTIFY, "2026-01-20", "erase chat c1")
        notices.record(
            requests.Recorder(conn, "dpo", ERASED),
            [owed],
            request_id="req-erase",
            subject_ref=str(ALICE_REF),
        )
    assert notices.open_notices(ledger.conn, str(ALICE_REF))  # still owed, found by the person
    assert _refusal(ledger, LATER) == request_periods.NOTICE


@pytest.mark.parametrize("placed", [ERASED, datetime(2027, 5, 1, tzinfo=UTC)])
def test_a_hold_on_the_person_keeps_the_period(
    ledger: sqlite_utils.Database, placed: datetime
) -> None:
    hold = holds.target_for(subject=ALICE_REF)
    with transaction(ledger) as conn:
        holds.change(conn, hold, "claim 2027-3", add=True, actor="dpo", now=placed)
    # The hold is chained keyed, and still read back as the person's reference.
    assert holds.active(ledger.conn).held(subject=ALICE_REF)
    chained = ledger.conn.execute("SELECT details FROM events WHERE event = 'hold_added'")
    assert str(ALICE_REF) not in chained.fetchone()[0]
    assert _refusal(ledger, LATER) == request_periods.HOLD
    with transaction(ledger) as conn:
        holds.change(conn, hold, "settled", add=False, actor="dpo", now=placed)
    assert not holds.active(ledger.conn).holds  # removed by the person's reference
    assert _refusal(ledger, LATER) is None


def test_a_copy_older_than_the_erasure_keeps_its_record(ledger: sqlite_utils.Database) -> None:
    older = Copy("2026-01-15T00:00:00Z", exists=True)
    assert _refusal(ledger, LATER, Rule(6, 60, (older,))) == request_periods.COPY
    # Deleted, or made after the erasure: it does not hold the person unmarked.
    gone = Copy("2026-01-15T00:00:00Z", exists=False)
    newer = Copy("2026-02-01T00:00:00Z", exists=True)
    assert _refusal(ledger, LATER, Rule(6, 60, (gone, newer))) is None


def test_a_copy_made_in_the_second_of_the_erasure_keeps_its_record(
    ledger: sqlite_utils.Database,
) -> None:
    # Stamps carry seconds only: a copy stamped with the erasure's second may have been taken
    # before the erasure finished, so it may hold the person unmarked (whatever its form).
    same = Copy(clock.format(ERASED), exists=True)
    assert _refusal(ledger, LATER, Rule(6, 60, (same,))) == request_periods.COPY
    with_fraction = Copy(ERASED.replace(microsecond=400_000).isoformat(), exists=True)
    assert _refusal(ledger, LATER, Rule(6, 60, (with_fraction,))) == request_periods.COPY
    after = Copy(clock.format(ERASED + timedelta(seconds=1)), exists=True)
    assert _refusal(ledger, LATER, Rule(6, 60, (after,))) is None


def test_snapengage_still_holding_an_erased_chat_keeps_its_record(
    ledger: sqlite_utils.Database,
) -> None:
    # A short retention so the SnapEngage window is the last one to close.
    rule = Rule(years=1, snapengage_days=400)
    assert _refusal(ledger, date(2027, 1, 21), rule) == request_periods.SNAPENGAGE
    # 2027-02-24 (erased + 400 days) is SnapEngage's deletion day: it may still hold the chat.
    assert _refusal(ledger, date(2027, 2, 24), rule) == request_periods.SNAPENGAGE
    assert _refusal(ledger, date(2027, 2, 25), rule) is None


def _forget(db: sqlite_utils.Database, journal: Path, now: datetime) -> dict[str, object]:
    ids = request_periods.evidence(db.conn, PERIOD).request_ids
    forget.journal(journal, KEY, PERIOD, now, ids)
    return forget.forget_period(db, PERIOD, now=now, actor="cron", run_id="r1")


def test_forgetting_a_period_unlinks_its_evidence_and_verify_still_passes(
    ledger: sqlite_utils.Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    create_empty(journal)
    now = datetime(2032, 1, 22, tzinfo=UTC)
    details = _forget(ledger, journal, now)
    assert details == {
        "period": PERIOD,
        "requests_forgotten": 2,
        "request_ids": ["req-access", "req-erase"],
        "erasures_forgotten": 1,
        "references_unlinked": 1,
        "key_destroyed": True,
        "by": "retention sweep",
    }
    conn = ledger.conn
    assert conn.execute("SELECT count(*) FROM period_keys").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM erased_subjects").fetchone()[0] == 0
    assert requests.list_requests(conn, subject_ref=ALICE_REF) == []
    # The requests stay on the record (ids, dates, outcomes), linked to nobody.
    assert {r.subject_ref for r in requests.list_requests(conn)} == {None}
    assert (
        str(ALICE_REF) not in conn.execute("SELECT group_concat(record) FROM events").fetchone()[0]
    )
    assert verify.verify_ledger(conn).ok
    note = forget.note(conn)
    assert note is not None and "requests and their answers recorded in 2026-01" in note
    # The access pack's words for the person: the month in words, no code.
    summary = forget.summary(conn)
    assert summary is not None and summary["request_periods"] == ["2026-01"]
    assert "January 2026" in summary["explanation"] and "req-" not in summary["explanation"]
    assert request_periods.plan(conn, LATER, RULE, holds.HoldSet()) == []


def test_a_restored_backup_does_not_bring_a_forgotten_period_back(
    ledger: sqlite_utils.Database, tmp_path: Path
) -> None:
    journal = tmp_path / "ledger.db.erasures.jsonl"
    create_empty(journal)
    # The journal holds the requests (as the commands write them) before the backup.
    rows = ledger.conn.execute(
        "SELECT case_id, subject_ref, recorded_at, actor, details, event FROM events "
        "WHERE event = 'request' ORDER BY seq"
    ).fetchall()
    names = ("case_id", "subject_ref", "recorded_at", "actor", "details", "event")
    lines = [dict(zip(names, row, strict=True)) for row in rows]
    for line in lines:
        line["lookup_ref"] = ALICE_REF
    erasure_journal.append_requests(journal, KEY, lines)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(backup) as copy:
        ledger.conn.backup(copy)
    _forget(ledger, journal, datetime(2032, 1, 22, tzinfo=UTC))

    restored = open_db(backup)
    contents = erasure_journal.read(journal, KEY)
    assert {r.subject_ref for r in contents.requests} == {ALICE_REF}
    gone = erasure_journal.read(journal, KEY).forgotten_requests
    assert gone == {"req-access", "req-erase"}
    result = erasure_reapply.reapply(
        restored, [], requests=contents.requests, now=datetime(2032, 2, 1, tzinfo=UTC),
        forgotten=gone,
    )  # fmt: skip
    assert result.requests == 0  # nothing re-appended under a new key
    wanted = erasure_journal.read(journal, KEY).forgotten
    later = datetime(2032, 2, 1, tzinfo=UTC)
    done = forget.reapply(restored, wanted, now=later, actor="restore", how="ledger restore")
    assert [d["period"] for d in done] == [PERIOD]  # the journal wins over the backup
    assert requests.list_requests(restored.conn, subject_ref=ALICE_REF) == []
    assert restored.conn.execute("SELECT count(*) FROM erased_subjects").fetchone()[0] == 0
    assert verify.verify_ledger(restored.conn).ok


def test_legacy_request_rows_are_counted_as_still_linkable(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ledger.db", create=True)
    with transaction(db) as conn:  # as a ledger before request periods would have chained it
        conn.execute("DROP TABLE legacy_refs")
        requests.Recorder(conn, "dpo", datetime(2025, 3, 1, tzinfo=UTC)).append(
            requests.EVENT,
            "req-old",
            ALICE_REF,
            requests.request_details("access", date(2025, 3, 1), "closed", "provided"),
        )
    assert db.conn.execute("SELECT subject_ref FROM events").fetchone()[0] == ALICE_REF
    with transaction(db) as conn:
        period_keys.index_legacy_evidence(conn)
    assert period_keys.legacy_rows(db.conn) == (1, "2025-03-01", "2025-03-01")
    assert [r.subject_ref for r in requests.list_requests(db.conn, ALICE_REF)] == [ALICE_REF]
    _request(db, "req-new", "access", ASKED, "closed")  # keyed: not counted
    assert period_keys.legacy_rows(db.conn)[0] == 1


def test_status_says_how_many_legacy_rows_remain_linkable_and_since_when(
    sync_env: Path,
) -> None:
    """A ledger upgraded from before period keys: `snapzen status` names its legacy rows
    (still linkable by whoever holds the ledger key), and says nothing once there are none."""
    from typer.testing import CliRunner

    from snapzen.cli import app

    runner = CliRunner()
    clean = runner.invoke(app, ["status", "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["legacy_references"] is None
    db = open_db(sync_env)
    rows = []
    with transaction(db) as conn:  # as an older snapzen chained them, then the migration
        conn.execute("DROP TABLE legacy_refs")
        for day in (date(2025, 3, 1), date(2025, 4, 2)):
            recorder = requests.Recorder(
                conn, "dpo", datetime.combine(day, datetime.min.time(), UTC)
            )
            recorder.append(
                requests.EVENT,
                f"req-{day.month}",
                ALICE_REF,
                requests.request_details("access", day, "closed", "provided"),
            )
            rows += recorder.rows
        period_keys.index_legacy_evidence(conn)
    db.conn.close()
    # ... and journalled them (a journal behind the ledger is a status finding of its own)
    erasure_journal.append_requests(Path(f"{sync_env}.erasures.jsonl"), LEDGER_KEY.encode(), rows)
    done = runner.invoke(app, ["status", "--json"])
    assert done.exit_code == 0, done.output
    legacy = json.loads(done.stdout)["legacy_references"]
    assert (legacy["rows"], legacy["first"], legacy["last"]) == (2, "2025-03-01", "2025-04-02")
    assert legacy["note"].startswith("2 ledger row(s) recorded 2025-03-01 to 2025-04-02")
    table = runner.invoke(app, ["status"])
    assert "legacy references: 2 ledger row(s) recorded 2025-03-01 to 2025-04-02" in table.stdout
    assert "ledger.key" in table.stdout


def test_the_art30_record_states_how_long_request_evidence_is_kept() -> None:
    from snapzen.ledger.evidence.art30_record import ledger_retention
    from snapzen.support.settings_gdpr import RecordSettings, TransferSettings

    transfer = TransferSettings(controller_country="GB")
    default = ledger_retention(transfer, RecordSettings())
    assert "6 years after the last step of every request" in default
    assert "complaint or a claim" in default
    shorter = ledger_retention(transfer, RecordSettings(request_evidence_years=3))
    assert "3 years after the last step" in shorter


def _journalled(db: sqlite_utils.Database, journal: Path) -> None:
    """The journal as the commands write it: Alice's request lines, her erasure line, and a
    line of Bob's (another period: kept)."""
    rows = db.conn.execute(
        "SELECT case_id, subject_ref, recorded_at, actor, details, event FROM events "
        "WHERE event = 'request' ORDER BY seq"
    ).fetchall()
    names = ("case_id", "subject_ref", "recorded_at", "actor", "details", "event")
    lines = [{**dict(zip(names, row, strict=True)), "lookup_ref": ALICE_REF} for row in rows]
    erasure_journal.append_requests(journal, KEY, lines)
    erased = erasure_journal.JournalEntry(
        "req-erase", str(ALICE_REF), "2026-01-20T09:00:00Z", "art17", [115]
    )
    erasure_journal.append(journal, KEY, erasure_journal.Contents([erased]))
    bob = {"case_id": "req-bob", "subject_ref": BOB_REF, "recorded_at": "2031-06-01T00:00:00Z",
           "actor": "dpo", "details": "{}", "event": "request"}  # fmt: skip
    erasure_journal.append_requests(journal, KEY, [bob])


def test_forgetting_a_request_period_removes_its_lines_from_the_rights_journal(
    ledger: sqlite_utils.Database, tmp_path: Path
) -> None:
    """Step 3 of forgetting: the journal no longer holds Alice's lookup reference; it keeps
    the period_forgotten line (a restore still forgets the period again), Bob's line, and
    still verifies: a checkpoint signed before the compaction is accepted with the ledger
    key, an edited line is still refused."""
    from snapzen.ledger.evidence.checkpoint import Checkpoint, journal_problem

    journal = tmp_path / "ledger.db.erasures.jsonl"
    create_empty(journal)
    _journalled(ledger, journal)
    signed = journal_file.head(journal_file.read(journal, KEY))
    point = Checkpoint(1, "h", 1, "2031-07-01T00:00:00Z", (), *signed)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(backup) as copy:
        ledger.conn.backup(copy)
    now = datetime(2032, 1, 22, tzinfo=UTC)

    ids = request_periods.evidence(ledger.conn, PERIOD).request_ids
    forget.journal(journal, KEY, PERIOD, now, ids)  # step 1 ...
    assert forget.compact_journal(ledger.conn, journal, KEY, now) == 0  # not before step 2
    assert str(ALICE_REF) in journal.read_text()
    forget.forget_period(ledger, PERIOD, now=now, actor="cron", run_id="r1")  # step 2
    # (a sweep killed here: the next one, or a restore, runs step 3)
    assert forget.compact_journal(ledger.conn, journal, KEY, now) == 3
    assert forget.compact_journal(ledger.conn, journal, KEY, now) == 0  # once

    text = journal.read_text()
    assert str(ALICE_REF) not in text and str(BOB_REF) in text
    assert journal.stat().st_mode & 0o777 == 0o600
    contents = erasure_journal.read(journal, KEY)
    assert contents.erasures == [] and [r.request_id for r in contents.requests] == ["req-bob"]
    assert list(erasure_journal.read(journal, KEY).forgotten) == [PERIOD]
    assert contents.forgotten_requests == {"req-access", "req-erase"}
    lines = journal_file.read(journal, KEY)
    assert [line.entry["lines_removed"] for line in lines if line.type == "compacted"] == [3]
    assert journal_problem(point, journal, KEY) is None  # the rewrite is a keyed line
    unkeyed = journal_problem(point, journal, None)
    assert unkeyed is not None and "compacted" in unkeyed

    # A backup taken before: restored, the period is forgotten again from the compacted
    # journal, and no request of it comes back.
    restored = open_db(backup)
    gone = erasure_journal.read(journal, KEY).forgotten_requests
    later = datetime(2032, 2, 1, tzinfo=UTC)
    result = erasure_reapply.reapply(restored, contents.erasures, requests=contents.requests,
                                     now=later, forgotten=gone)  # fmt: skip
    assert result.requests == 1  # Bob's only
    done = forget.reapply(restored, contents.forgotten, now=later, actor="restore", how="restore")
    assert [d["period"] for d in done] == [PERIOD]
    assert requests.list_requests(restored.conn, subject_ref=ALICE_REF) == []
    assert verify.verify_ledger(restored.conn).ok

    # Still keyed and chained: an edited line is refused, naming it.
    lines = journal.read_text().splitlines()
    lines[0] = lines[0].replace("req-bob", "req-bib")
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(erasure_journal.JournalDamaged, match="line 1"):
        erasure_journal.read(journal, KEY)


def test_a_checkpoint_is_refused_when_its_lines_vanish_without_a_compaction(
    ledger: sqlite_utils.Database, tmp_path: Path
) -> None:
    """The compaction line is what lets a checkpoint through: a journal rewritten by anyone
    else (here: re-chained without the last line, by someone with the key) is still caught."""
    from snapzen.ledger.evidence.checkpoint import Checkpoint, journal_problem

    journal = tmp_path / "journal.jsonl"
    _journalled(ledger, journal)
    lines = journal_file.read(journal, KEY)
    point = Checkpoint(1, "h", 1, "2031-07-01T00:00:00Z", (), *journal_file.head(lines))
    journal_file.write_copy(journal, lines[:-1], KEY)
    problem = journal_problem(point, journal, KEY)
    assert problem is not None and "deleted from its end" in problem
