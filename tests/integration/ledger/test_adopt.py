"""Adoption into the ledger and flags for a human: what Zendesk holds is recorded once, an
`adopted` event per case; several tickets for one case are never picked silently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from snapzen.commands import service
from snapzen.commands.status import collect_status, status_exit_code
from snapzen.ledger.evidence.verify import verify_ledger
from snapzen.ledger.store import outbox
from snapzen.ledger.store.adopt import FoundTicket, record_adoptions
from snapzen.ledger.store.case_flags import open_flags
from snapzen.ledger.store.db import create_ledger, open_db
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent, staged_case

KEY = b"adopt-ledger-key-0123456789abcdef"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _found(*ids: int) -> list[FoundTicket]:
    return [FoundTicket(i, "2026-11-20T09:00:00Z", ("snapengage", "gdpr_art49_1a")) for i in ids]


def test_adoption_records_each_case_once_with_an_adopted_event(tmp_path: Path) -> None:
    db = create_ledger(tmp_path / "l.db", KEY, NOW)
    outbox.stage(db, [staged_case("pending-one")], NOW)  # staged but never recorded as sent
    found = {"new-one": _found(11), "pending-one": _found(12), "dup": _found(14, 13)}
    counts = record_adoptions(db, found, NOW, source="test", actor="t", run_id="r1")
    assert (counts.adopted, counts.already, counts.flagged) == (3, 0, ["dup"])

    rows = {
        r[0]: r[1:]
        for r in db.execute("SELECT case_id, status, ticket_id, day, raw FROM cases").fetchall()
    }
    assert rows["new-one"] == ("synced", 11, "2026-11-20", None)
    assert rows["pending-one"][:2] == ("synced", 12) and rows["pending-one"][3] is None
    assert rows["dup"][:2] == ("synced", 13)  # the first one created, and flagged

    events = db.execute(
        "SELECT case_id, ticket_id, details FROM events WHERE event = 'adopted' ORDER BY seq"
    ).fetchall()
    assert [e[0] for e in events] == ["dup", "new-one", "pending-one"]
    assert json.loads(events[0][2])["ticket_ids"] == [13, 14]
    assert "not in this ledger" in json.loads(events[1][2])["evidence"]
    assert db.execute("SELECT COUNT(*) FROM events WHERE event='transfer'").fetchone()[0] == 0
    assert verify_ledger(db.conn).ok

    rows = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    again = record_adoptions(db, found, NOW, source="test", actor="t", run_id="r2")
    assert (again.adopted, again.already) == (0, 2)  # rerunnable: nothing appended twice
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == rows


def test_flags_show_in_status_and_make_it_exit_3(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    record_adoptions(db, {"dup": _found(5, 6)}, NOW, source="restore", actor="t", run_id="r")
    withheld = {"held": _found(7)}
    db.execute(
        "INSERT INTO cases (case_id, widget_id, status, first_seen_at, updated_at) "
        "VALUES ('held', 'w1', 'withheld', 'x', 'x')"
    )
    db.conn.commit()
    record_adoptions(db, withheld, NOW, source="restore", actor="t", run_id="r")
    flags = {f["case_id"]: f for f in open_flags(db)}
    assert flags["dup"]["kind"] == "duplicate_tickets" and flags["dup"]["ticket_ids"] == [5, 6]
    assert flags["held"]["kind"] == "ticket_for_withheld"
    assert db.execute("SELECT status FROM cases WHERE case_id='held'").fetchone()[0] == "withheld"
    report = collect_status(db, settings, NOW)
    assert {f["case_id"] for f in report["flagged"]} == {"dup", "held"}
    assert status_exit_code(report) == 3


def test_a_withheld_case_with_several_tickets_stays_withheld_and_is_flagged(
    settings: Settings,
) -> None:
    # The ledger decided not to send this chat (consent refused, the person erased), yet
    # Zendesk holds two tickets for it: a person must find out who sent them. Adoption must
    # not turn the decision into "synced" because there happen to be two.
    db = open_db(settings.ledger.path)
    for case_id, status in (("held", "withheld"), ("skipped", "ignored")):
        db.execute(
            "INSERT INTO cases (case_id, widget_id, status, first_seen_at, updated_at) "
            "VALUES (?, 'w1', ?, 'x', 'x')",
            (case_id, status),
        )
    db.conn.commit()
    done = record_adoptions(
        db, {"held": _found(8, 9), "skipped": _found(10, 11)}, NOW, source="restore",
        actor="t", run_id="r",
    )  # fmt: skip
    assert done.adopted == 0
    statuses = dict(db.execute("SELECT case_id, status FROM cases").fetchall())
    assert statuses == {"held": "withheld", "skipped": "ignored"}
    flags = {f["case_id"]: f for f in open_flags(db)}
    assert flags["held"]["kind"] == "ticket_for_withheld" and flags["held"]["ticket_ids"] == [8, 9]
    assert flags["skipped"]["kind"] == "ticket_for_withheld"
    assert db.execute("SELECT COUNT(*) FROM events WHERE event='adopted'").fetchone()[0] == 0
    assert verify_ledger(db.conn).ok


def test_recovery_finding_two_tickets_flags_the_case_and_deletes_none(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.fail_post_after_accept = 1  # created, but the answer was lost: recovered by lookup
    service.sync(settings)
    apis.complete_all_jobs()
    apis.hide_jobs = True  # the job is gone: recovery must look the tickets up
    original = next(t for t in apis.tickets if t["external_id"] == "snapengage:c1")
    second = apis.add_ticket("snapengage:c1")  # someone created a second one
    service.sync(settings)
    db = open_db(settings.ledger.path)
    flags = open_flags(db)
    assert [(f["case_id"], f["ticket_ids"]) for f in flags] == [
        ("c1", sorted([original["id"], second]))
    ]
    assert len(apis.tickets) == 4  # nothing created a third time, nothing deleted
    assert db.execute("SELECT status FROM cases WHERE case_id='c1'").fetchone()[0] == "synced"


def test_a_flag_keeps_what_the_ledger_knew_beside_the_chained_flag(tmp_path: Path) -> None:
    """A person resolving a mismatch reads, in case_flags.details, what the ledger held (its
    ticket, or its status); the chained case_flagged event names the flag and its tickets."""
    db = create_ledger(tmp_path / "l.db", KEY, NOW)
    db.execute(
        "INSERT INTO cases (case_id, widget_id, status, ticket_id, first_seen_at, updated_at) "
        "VALUES ('mine', 'w1', 'synced', 501, 'x', 'x'), ('held', 'w1', 'withheld', NULL, 'x', 'x')"
    )
    db.conn.commit()
    found = {"mine": _found(777), "held": _found(778)}
    record_adoptions(db, found, NOW, source="restore", actor="t", run_id="r1")
    details = dict(db.execute("SELECT case_id, details FROM case_flags").fetchall())
    assert json.loads(details["mine"]) == {"ledger_ticket_id": 501}
    assert json.loads(details["held"]) == {"ledger_status": "withheld"}
    chained = db.execute(
        "SELECT details FROM events WHERE event = 'case_flagged' AND case_id = 'mine'"
    ).fetchone()[0]
    assert json.loads(chained) == {
        "kind": "ticket_mismatch",
        "source": "restore",
        "ticket_ids": [777],
    }
    assert verify_ledger(db.conn).ok
