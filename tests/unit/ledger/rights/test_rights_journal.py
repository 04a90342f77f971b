"""The rights journal (issue 23): keyed and chained lines, refused when edited; erasures and
requests re-applied to an older copy of the ledger, united with the replaced ledger's own
record; narrowed erasures; the old format read once; the checkpoint covering its head."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlite_utils

from snapzen.commands import erase
from snapzen.commands.erase_request import RequestInfo
from snapzen.ledger.evidence import agreement, verify
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.rights import erasure_journal, journal_file, requests
from snapzen.ledger.rights.erasure_journal import Contents, JournalDamaged, JournalEntry
from snapzen.ledger.rights.erasure_reapply import JournalChoice, choose, reapply, restore_union
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support.errors import ConfigError
from tests.integration.ledger.test_erase import ALICE_REF, FakeZendesk
from tests.ledger_fixtures import KEY

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _entry(n: int, **overrides: object) -> JournalEntry:
    fields: dict[str, object] = {
        "request_id": f"req-{n}", "subject_ref": f"ref-{n}", "erased_at": "2026-11-01T00:00:00Z",
        "reason": "art17_request", "tickets": [n], "cases": [],
    }  # fmt: skip
    fields.update(overrides)
    return JournalEntry(**fields)  # type: ignore[arg-type]


def _journal(tmp_path: Path, count: int = 3) -> Path:
    path = tmp_path / "ledger.db.erasures.jsonl"
    for n in range(1, count + 1):
        erasure_journal.append(path, KEY, Contents([_entry(n)]))
    return path


def _copy(src: sqlite_utils.Database, dest: Path) -> sqlite_utils.Database:
    target = sqlite3.connect(dest)
    src.conn.backup(target)
    target.close()
    return open_db(dest)


def test_lines_are_keyed_chained_and_created_private(tmp_path: Path, umask_022: None) -> None:
    path = _journal(tmp_path)
    assert (path.stat().st_mode & 0o777) == 0o600
    contents = erasure_journal.read(path, KEY)
    assert [e.request_id for e in contents.erasures] == ["req-1", "req-2", "req-3"]
    last = json.loads(path.read_text().split("\n")[2])["mac"]
    assert journal_file.head(journal_file.read(path, KEY)) == (3, last)
    with pytest.raises(JournalDamaged, match="line 1: its MAC does not verify"):
        erasure_journal.read(path, b"another-ledger-key-0123456789")


def _forge_plain_hash(lines: list[str]) -> list[str]:
    """Line 2 names another person, its checksum recomputed as the old format had it."""
    data = json.loads(lines[1])
    data["entry"]["subject_ref"] = "ref-forged"
    body = json.dumps(data["entry"], sort_keys=True, separators=(",", ":"))
    return [lines[0], json.dumps({"entry": data["entry"], "sha256": _sha(body)}), lines[2]]


def _forge_mac_as_hash(lines: list[str]) -> list[str]:
    """Line 2 edited, its mac replaced by the plain SHA-256 of the signed fields."""
    data = json.loads(lines[1])
    data["entry"]["tickets"] = [999]
    body = {k: v for k, v in data.items() if k != "mac"}
    data["mac"] = _sha(json.dumps(body, sort_keys=True, separators=(",", ":")))
    return [lines[0], json.dumps(data), lines[2]]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: [lines[0], lines[2]], "line 2: breaks the chain"),
        (lambda lines: [lines[0], lines[2], lines[1]], "line 2: breaks the chain"),
        (lambda lines: [lines[1], lines[0], lines[2]], "line 1: breaks the chain"),
        (_forge_plain_hash, "line 2: an old-format"),
        (_forge_mac_as_hash, "line 2: its MAC does not verify"),
    ],
    ids=["deleted", "reordered", "first-moved", "forged-plain-hash", "forged-mac"],
)
def test_an_edited_journal_is_refused_naming_the_line(
    tmp_path: Path, edit: object, message: str
) -> None:
    path = _journal(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")  # type: ignore[operator]
    with pytest.raises(JournalDamaged, match=message) as caught:
        erasure_journal.read(path, KEY)
    assert isinstance(caught.value, ConfigError)  # exit 2
    with pytest.raises(JournalDamaged, match=message):  # nor appended to
        erasure_journal.append(path, KEY, Contents([_entry(9)]))


def _erase_alice(
    db: sqlite_utils.Database, journal: Path, only: set[str] | None = None
) -> RequestInfo:
    request = RequestInfo(
        request_id=requests.new_request_id(), kind="erasure", received_on=date(2026, 11, 20),
        journal=journal, journal_key=KEY,
    )  # fmt: skip
    erase.erase_subject(
        db, ALICE_REF, FakeZendesk(range(1001, 1011)), request=request, now=NOW, only_cases=only
    )
    return request


def _old_format(path: Path, entries: list[JournalEntry]) -> None:
    """The journal as snapzen wrote it before issue 23 (unkeyed SHA-256, no chain)."""
    lines = []
    for entry in entries:
        body = json.dumps(entry.body(), sort_keys=True, separators=(",", ":"))
        lines.append(json.dumps({"entry": json.loads(body), "sha256": _sha(body)}))
    path.write_text("\n".join(lines) + "\n")


def test_an_old_format_journal_is_read_only_for_the_ledgers_own_erasures_then_migrated(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch.jsonl"
    request = _erase_alice(db, scratch)
    own = erasure_journal.read(scratch, KEY).erasures[0]
    assert own.request_id == request.request_id
    path = tmp_path / "old.jsonl"
    _old_format(path, [own, _entry(2)])  # the second line: no such erasure in the ledger
    known = erasure_journal.ledger_erasures(db.conn)
    with pytest.raises(JournalDamaged, match="line 2: an old-format"):
        erasure_journal.read(path, KEY, known=known)
    _old_format(path, [own])
    assert erasure_journal.read(path, KEY, known=known).erasures == [own]
    with pytest.raises(JournalDamaged, match="line 1: an old-format"):
        erasure_journal.read(path, KEY)  # nobody vouches for it
    assert erasure_journal.migrate(path, KEY, known) == 1
    assert erasure_journal.read(path, KEY).erasures == [own]  # keyed now, no vouching needed
    assert erasure_journal.migrate(path, KEY, known) == 0


def test_a_narrowed_erasure_journals_its_chats_only(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    journal = tmp_path / "j.jsonl"
    _erase_alice(db, journal, only={"case-3"})
    [entry] = erasure_journal.read(journal, KEY).erasures
    assert entry.narrowed and entry.cases == ["case-3"] and entry.tickets == [1003]
    # Not the whole reference: another person's later chat under it is not erased.
    assert db.execute("SELECT count(*) FROM erased_subjects").fetchone()[0] == 0
    with transaction(db) as conn:  # a pending chat of the same reference
        conn.execute(
            "INSERT INTO cases (case_id, widget_id, status, subject_ref, started_at, "
            "first_seen_at, updated_at) VALUES ('case-other', 'w1', 'pending', ?, "
            "'2026-10-01T00:00:00Z', 'x', 'x')",
            (ALICE_REF,),
        )
    reapply(db, [entry], now=NOW)
    status = db.execute("SELECT status FROM cases WHERE case_id = 'case-other'").fetchone()
    assert status == ("pending",)
    assert verify.verify_ledger(db.conn).ok
    # A ledger that never saw the chat (a backup older than it) withholds it before a fetch
    # could send it again, and nothing else of the reference.
    older = open_db(tmp_path / "older.db", create=True)
    assert reapply(older, [entry], now=NOW).withheld == 1
    rows = older.execute("SELECT case_id, widget_id, status, reason FROM cases").fetchall()
    assert rows == [("case-3", "w1", "withheld", "erased_art17")]
    assert older.execute("SELECT count(*) FROM erased_subjects").fetchone() == (0,)
    assert agreement.check_tables(older.conn).problems == []


def test_requests_and_erasures_come_back_on_an_older_copy(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    backup = _copy(db, tmp_path / "backup.db")
    journal = tmp_path / "j.jsonl"
    with transaction(db) as conn:  # an access request, as `ledger access` journals it
        details = requests.request_details("access", date(2026, 11, 18), "closed", "provided")
        row = requests.Recorder(conn, "dpo", NOW).append(
            requests.EVENT, "req-access", ALICE_REF, details
        )
    erasure_journal.append_requests(journal, KEY, [row])
    _erase_alice(db, journal)
    live = [r.as_dict() for r in requests.list_requests(db.conn)]
    assert len(live) == 2

    contents = erasure_journal.read(journal, KEY)
    first = reapply(backup, contents.erasures, requests=contents.requests, now=NOW)
    again = reapply(backup, contents.erasures, requests=contents.requests, now=NOW)
    assert (first.requests, first.events, again.requests, again.events) == (2, 3, 0, 0)
    restored = [r.as_dict() for r in requests.list_requests(backup.conn)]
    keep = ("request_id", "kind", "received_on", "deadline", "status", "outcome", "updated_at")
    assert [{k: r[k] for k in keep} for r in restored] == [{k: r[k] for k in keep} for r in live]
    assert backup.execute("SELECT subject_ref FROM erased_subjects").fetchall() == [(ALICE_REF,)]
    assert verify.verify_ledger(backup.conn).ok


def test_restore_unites_the_journal_with_the_replaced_ledgers_erasures(
    db: sqlite_utils.Database, ledger_path: Path, tmp_path: Path
) -> None:
    backup = _copy(db, tmp_path / "backup.db")
    _erase_alice(db, tmp_path / "lost.jsonl")
    live = tmp_path / "ledger.db.erasures.jsonl"
    assert not live.exists()  # the journal is lost: only the replaced ledger knows
    choice = JournalChoice(None, live, KEY)
    result = restore_union(
        backup, choice, ledger_path, now=NOW, actor="t", command="ledger restore"
    )
    assert result.entries == 1 and result.no_journal and result.from_replaced == 2
    assert backup.execute("SELECT subject_ref FROM erased_subjects").fetchall() == [(ALICE_REF,)]
    erased = backup.execute("SELECT count(*) FROM events WHERE event = 'erased'").fetchone()
    assert erased == (3,)
    statement = backup.execute(
        "SELECT details FROM events WHERE event = 'operator_statement'"
    ).fetchone()
    assert "nobody was erased" in statement[0]
    # The live journal now holds what only the replaced ledger knew, keyed and chained.
    assert [e.subject_ref for e in erasure_journal.read(live, KEY).erasures] == [ALICE_REF]


def test_no_journal_is_refused_unless_given_or_stated(tmp_path: Path) -> None:
    live = tmp_path / "ledger.db.erasures.jsonl"
    with pytest.raises(ConfigError, match=r"--erasure-journal FILE.*--no-erasure-journal"):
        choose(live, KEY, None, False, "init --adopt")
    with pytest.raises(ConfigError, match="not both"):
        choose(live, KEY, live, True, "init --adopt")
    assert choose(live, KEY, None, True, "init --adopt").path is None
    given = _journal(tmp_path / "copy")
    assert choose(live, KEY, given, False, "ledger restore").path == given
    given.write_text(given.read_text().replace("req-2", "req-X"))
    with pytest.raises(JournalDamaged, match="line 2"):
        choose(live, KEY, given, False, "ledger restore")


def test_the_checkpoint_signs_the_journal_head(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _journal(tmp_path)
    head = journal_file.head(journal_file.read(path, KEY))
    key = signed.generate()
    point = signed.make(db.conn, key, journal=head)
    assert (point.journal_lines, point.journal_head) == head
    out = tmp_path / "cp.json"
    signed.write(out, point)
    loaded = signed.read(out)
    assert isinstance(loaded, signed.Checkpoint)
    assert signed.check_signature(loaded, key.public_key())
    assert signed.journal_problem(loaded, path, KEY) is None

    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # the newest line deleted: chain still whole
    problem = signed.journal_problem(loaded, path, KEY)
    assert problem is not None and "ends at line 2" in problem
    data = json.loads(out.read_text())
    data["journal_lines"] = 2  # the checkpoint edited to match: its signature breaks
    out.write_text(json.dumps(data))
    forged = signed.read(out)
    assert signed.check_signature(forged, key.public_key()) is False  # forged, not "other key"


def test_the_next_erasure_migrates_an_old_format_journal_then_appends(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch.jsonl"
    _erase_alice(db, scratch)
    own = erasure_journal.read(scratch, KEY).erasures[0]
    path = tmp_path / "old.jsonl"
    _old_format(path, [own])
    _erase_alice(db, path)  # a rerun: a second request for the same person
    contents = erasure_journal.read(path, KEY)  # keyed throughout now
    assert contents.erasures[0].request_id == own.request_id
    assert len(contents.erasures) == 2
    # Both requests' events: the first one's, which the version-1 journal never held, is
    # caught up from the ledger (erasure_journal.catch_up), before the rerun's own.
    assert [r.request_id for r in contents.requests] == [e.request_id for e in contents.erasures]
    assert "sha256" not in path.read_text()


def test_an_erasure_request_only_received_erases_nobody_on_restore(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """`ledger requests open --type erasure` then pause/close: request-clock events, never an
    erasure: a restore re-applies them as events and withholds nobody; verify agrees."""
    backup = _copy(db, tmp_path / "backup.db")
    journal = tmp_path / "j.jsonl"
    with transaction(db) as conn:
        details = requests.request_details(
            "erasure", date(2026, 11, 20), requests.OPEN, "received", {"via": requests.CLOCK}
        )
        opened = requests.Recorder(conn, "dpo", NOW).append(
            requests.EVENT, "req-clock", ALICE_REF, details
        )
    (request,) = requests.list_requests(db.conn)
    with transaction(db) as conn:
        paused = requests.Recorder(conn, "dpo", NOW).append(
            requests.PAUSED,
            request.request_id,
            request.subject_ref,
            {"kind": "erasure", "via": requests.CLOCK, "reason": "identity"},
        )
    erasure_journal.append_requests(journal, KEY, [opened, paused])
    assert erasure_journal.ledger_erasures(db.conn) == []
    assert verify.verify_ledger(db.conn).ok

    contents = erasure_journal.read(journal, KEY)
    assert [line.event for line in contents.requests] == ["request", "request_paused"]
    done = reapply(backup, contents.erasures, requests=contents.requests, now=NOW)
    assert (done.entries, done.requests, done.withheld) == (0, 2, 0)
    (back,) = requests.list_requests(backup.conn, today=date(2026, 12, 5))
    assert (back.status, back.deadline) == ("paused", "2026-12-24")  # 4 days paused so far
    assert backup.execute("SELECT COUNT(*) FROM erased_subjects").fetchone() == (0,)
    assert verify.verify_ledger(backup.conn).ok


def test_what_the_ledger_committed_and_the_journal_lacks_is_appended_once(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    """A writer killed between its commit and its journal append (erase.erase_subject, the
    requests' `chained`): the next `prepare` appends the ledger's own lines the journal lacks,
    once, chained and keyed; an edited journal is refused before anything is appended."""
    path = tmp_path / "ledger.db.erasures.jsonl"
    scratch = tmp_path / "lost.jsonl"  # where the killed run's lines went: not the journal
    request = _erase_alice(db, scratch)
    assert not path.exists()
    appended = erasure_journal.prepare(path, KEY, db.conn)
    assert [e.request_id for e in appended.erasures] == [request.request_id]
    once = path.read_text()
    lost = erasure_journal.read(scratch, KEY)
    assert {r.identity() for r in erasure_journal.read(path, KEY).requests} == {
        r.identity() for r in lost.requests
    }
    erasure_journal.prepare(path, KEY, db.conn)
    assert path.read_text() == once  # nothing twice
    assert journal_file.head(journal_file.read(path, KEY))[0] == len(once.splitlines())

    lines = once.splitlines()
    edited = json.loads(lines[0])
    edited["entry"]["tickets"] = []
    path.write_text("\n".join([json.dumps(edited), *lines[1:]]) + "\n")
    with transaction(db) as conn:  # the ledger commits a request the journal lacks
        requests.Recorder(conn, "dpo", NOW).append(
            requests.EVENT,
            "req-later",
            ALICE_REF,
            requests.request_details("access", NOW.date(), "open", None),
        )
    with pytest.raises(JournalDamaged, match="line 1: its MAC does not verify"):
        erasure_journal.prepare(path, KEY, db.conn)
    assert "req-later" not in path.read_text()
