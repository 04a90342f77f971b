"""The retention sweep and data-subject rights: each transfer's recorded retention_until
decides (not today's retention_years), legal holds keep due tickets, and the erasure journal
re-applies to a ledger directly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapzen.commands.retention import run_sweep
from snapzen.ledger.rights import erasure_journal, holds
from snapzen.ledger.rights.erasure_reapply import reapply
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support.settings import Settings, load_settings
from tests.integration.test_retention import (
    DUE,
    DeletionApis,
    deletion_sandbox,
    expired_events,
    synced,
    tickets_of,
)


@pytest.fixture
def old_settings(sync_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # As in test_retention: the sandbox's SnapEngage hands out chats older than 2 years.
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__RETENTION_DAYS", "1000")
    # These tests read Zendesk's deleted bin after a sweep: purge only where a test asks
    # (the default purges; test_purge_is_the_default checks it).
    monkeypatch.setenv("SNAPZEN_TRANSFER__PURGE_ON_EXPIRY", "false")
    return load_settings()


@pytest.fixture
def zd() -> Iterator[DeletionApis]:
    yield from deletion_sandbox()


def _years(settings: Settings, years: int) -> Settings:
    return settings.model_copy(
        update={"transfer": settings.transfer.model_copy(update={"retention_years": years})}
    )


def test_recorded_retention_until_decides_not_todays_setting(
    old_settings: Settings, zd: DeletionApis
) -> None:
    db = synced(old_settings, zd)  # recorded with 2 years
    recorded = dict(
        db.execute("SELECT case_id, retention_until FROM events WHERE event = 'transfer'")
    )
    # With 3 years configured now, the restricted transfers recorded as due are still due;
    # old-us (no transfer row: not restricted) follows the setting and is not.
    result = run_sweep(_years(old_settings, 3))
    assert result.exit_code == 0
    events = {e["case_id"]: e for e in expired_events(open_db(old_settings.ledger.path))}
    assert set(events) == DUE - {"old-us"}
    for case_id, event in events.items():
        assert event["retention_until"] == recorded[case_id]
        assert '"retention_source":"recorded"' in event["details"]


def test_recorded_retention_until_is_not_shortened_by_a_smaller_setting(
    old_settings: Settings, zd: DeletionApis
) -> None:
    db = synced(_years(old_settings, 3), zd)  # recorded with 3 years: nothing due yet
    ids = tickets_of(db)
    result = run_sweep(_years(old_settings, 2))
    # Only old-us (not restricted, so the setting applies) goes; restricted rows say 3 years.
    assert result.deleted == 1 and zd.soft_deleted == {ids["old-us"]}


def test_holds_keep_due_tickets_until_lifted(old_settings: Settings, zd: DeletionApis) -> None:
    db = synced(old_settings, zd)
    ids = tickets_of(db)
    now = datetime.now(UTC)
    with transaction(db) as conn:
        holds.change(
            conn, holds.target_for(case_id="old-eu"), "claim 1", add=True, actor="t", now=now
        )
        holds.change(
            conn,
            holds.target_for(ticket_id=ids["boundary"]),
            "claim 2",
            add=True,
            actor="t",
            now=now,
        )
    dry = run_sweep(old_settings, dry_run=True)
    assert (dry.due, dry.held) == (1, 2)
    result = run_sweep(old_settings)
    assert (result.deleted, result.held) == (1, 2)
    assert zd.soft_deleted == {ids["old-us"]}
    with transaction(db) as conn:
        assert (
            holds.change(conn, "case:old-eu", "settled", add=False, actor="t", now=now) is not None
        )
        assert holds.change(conn, "case:old-eu", "again", add=False, actor="t", now=now) is None
    again = run_sweep(old_settings)
    assert (again.deleted, again.held) == (1, 1)
    assert zd.soft_deleted == {ids["old-us"], ids["old-eu"]}


def test_reapply_is_idempotent_and_a_damaged_journal_applies_nothing(
    old_settings: Settings, zd: DeletionApis, tmp_path: Path
) -> None:
    db = synced(old_settings, zd)
    ref, ticket = db.execute(
        "SELECT subject_ref, ticket_id FROM cases WHERE case_id = 'young-eu'"
    ).fetchone()
    entry = erasure_journal.JournalEntry("req-1", ref, "2999-01-01T00:00:00Z", "objection",
                                         [int(ticket)], [])  # fmt: skip
    journal, key = tmp_path / "j.jsonl", b"ledger-key-for-tests"
    erasure_journal.append(journal, key, erasure_journal.Contents([entry]))
    first = reapply(db, erasure_journal.read(journal, key).erasures)
    second = reapply(db, erasure_journal.read(journal, key).erasures)
    assert (first.entries, first.events) == (1, 1)
    assert (second.entries, second.events) == (1, 0)
    erased = db.execute("SELECT details FROM events WHERE event = 'erased'").fetchall()
    assert len(erased) == 1 and '"reapplied":true' in erased[0][0]
    assert db.execute("SELECT erased_at FROM erased_subjects").fetchall() == [
        ("2999-01-01T00:00:00Z",)
    ]
    journal.write_text(journal.read_text().replace("objection", "art17_request"))
    with pytest.raises(erasure_journal.JournalDamaged, match="line 1"):
        erasure_journal.read(journal, key)


def test_a_sweep_killed_before_compacting_the_rights_journal_is_finished_by_the_next(
    old_settings: Settings, zd: DeletionApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forgetting a request period: journal line, ledger transaction, then the journal
    rewritten without the period's request lines. Killed before the rewrite, the journal still
    holds the person's lookup reference; the next sweep removes it (and only it)."""
    from datetime import timedelta

    from snapzen.ledger.rights import requests
    from snapzen.ledger.rights.subjects import subject_ref
    from snapzen.ledger.store.db import configured_key
    from tests.integration.test_retention import SimulatedCrash

    monkeypatch.setenv("SNAPZEN_RECORD__REQUEST_EVIDENCE_YEARS", "1")
    settings = load_settings()
    db = synced(settings, zd)
    key = configured_key(settings.ledger)
    assert key is not None
    ref = str(subject_ref(key, "asked-long-ago@example.com"))
    asked = datetime.now(UTC) - timedelta(days=800)
    with transaction(db) as conn:
        details = requests.request_details("access", asked.date(), "closed", "provided")
        requests.Recorder(conn, "dpo", asked).append(requests.EVENT, "req-old", ref, details)
    rows = db.conn.execute(
        "SELECT case_id, subject_ref, recorded_at, actor, details, event FROM events "
        "WHERE event = 'request'"
    ).fetchall()
    names = ("case_id", "subject_ref", "recorded_at", "actor", "details", "event")
    journal = settings.ledger.erasure_journal_path
    erasure_journal.append_requests(
        journal, key, [{**dict(zip(names, r, strict=True)), "lookup_ref": ref} for r in rows]
    )

    def crash(point: str) -> None:
        if point == "before_compaction":
            raise SimulatedCrash(point)

    with pytest.raises(SimulatedCrash):
        run_sweep(settings, crash_hook=crash)
    period = "req-" + asked.strftime("%Y-%m")
    assert erasure_journal.forgotten_requests(open_db(settings.ledger.path).conn) == {"req-old"}
    assert ref in journal.read_text()  # the ledger forgot; the journal not yet

    run_sweep(settings)
    contents = erasure_journal.read(journal, key)
    assert ref not in journal.read_text()
    assert contents.requests == [] and period in contents.forgotten
    assert journal.stat().st_mode & 0o777 == 0o600


def test_reapply_erasures_refuses_a_journal_file_that_is_not_there(
    old_settings: Settings, zd: DeletionApis, tmp_path: Path
) -> None:
    """`ledger reapply-erasures --journal FILE` with a mistyped FILE: exit 2 naming it, nothing
    applied. (It re-applies the live journal too: counting the live journal's erasures as
    FILE's would tell the operator the copy they meant was applied.)"""
    from snapzen.commands.reapply import reapply_journal
    from snapzen.support.errors import ConfigError
    from snapzen.support.settings import require_ledger_key

    db = synced(old_settings, zd)
    ref = db.execute("SELECT subject_ref FROM cases WHERE case_id = 'young-eu'").fetchone()[0]
    live = old_settings.ledger.erasure_journal_path
    entry = erasure_journal.JournalEntry("req-1", ref, "2999-01-01T00:00:00Z", "art17_request",
                                         [], [])  # fmt: skip
    erasure_journal.append(
        live, require_ledger_key(old_settings), erasure_journal.Contents([entry])
    )
    (before,) = db.execute("SELECT count(*) FROM events").fetchone()
    db.conn.close()
    missing = tmp_path / "erasures-copy.jsonl"
    with pytest.raises(ConfigError, match=f"--journal {missing}: no such file"):
        reapply_journal(old_settings, missing, 0)
    after = open_db(Path(old_settings.ledger.path))
    assert after.execute("SELECT count(*) FROM events").fetchone()[0] == before
    result, path = reapply_journal(old_settings, None, 0)  # the live journal, as ever
    assert (result.entries, path) == (1, live)
