"""A person closes a flagged case: `snapzen ledger flags` lists the open flags and
`ledger flags resolve` records the decision (chained, with reason and actor), through
CliRunner on a real ledger; a wrong case, kind or a flag already closed is refused with one
line (exit 2), a held writer lock leaves it undone (exit 1), and `ledger verify` names a
flag closed by hand in the table."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from snapzen.cli import ledger as ledger_cli
from snapzen.commands.status import collect_status
from snapzen.ledger.store.case_flags import TICKET_FOR_WITHHELD, flag_case, flag_duplicates
from snapzen.ledger.store.db import locked_ledger, open_ledger, transaction
from snapzen.support.lock import writer_lock
from snapzen.support.settings import Settings

runner = CliRunner()
EARLIER = datetime.now(UTC) - timedelta(minutes=5)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(ledger_cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def flagged(settings: Settings) -> Path:
    """c1 flagged with two tickets (a sync's recovery), c2 with a ticket for a withheld chat."""
    with locked_ledger(settings.ledger) as db:
        flag_duplicates(db, "c1", [101, 102], EARLIER, source="recovery")
        with transaction(db) as conn:
            flag_case(conn, "c2", TICKET_FOR_WITHHELD, [103], EARLIER, source="init --adopt")
    return settings.ledger.path


def events(path: Path, event: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT case_id, actor, details FROM events WHERE event = ? ORDER BY seq", (event,)
        ).fetchall()


def open_cases(settings: Settings) -> list[str]:
    db = open_ledger(settings.ledger, read_only=True)
    try:
        return [f["case_id"] for f in collect_status(db, settings, datetime.now(UTC))["flagged"]]
    finally:
        db.conn.close()


def test_a_person_lists_and_resolves_a_flag_chained_with_reason_and_actor(
    settings: Settings, flagged: Path
) -> None:
    code, out, _ = run("flags", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(f["case_id"], f["kind"], f["ticket_ids"]) for f in listed] == [
        ("c1", "duplicate_tickets", [101, 102]),
        ("c2", "ticket_for_withheld", [103]),
    ]
    code, out, _ = run("flags")
    assert code == 0 and "duplicate_tickets" in out and "101, 102" in out

    code, out, err = run(
        "flags", "resolve", "c1", "--kind", "duplicate_tickets",
        "--reason", "both kept: two chats", "--actor", "dpo",
    )  # fmt: skip
    assert code == 0, err
    assert "case c1: flag duplicate_tickets resolved" in out
    [(case, actor, details)] = events(flagged, "case_flag_resolved")
    assert (case, actor) == ("c1", "dpo")
    assert json.loads(details) == {
        "kind": "duplicate_tickets", "ticket_ids": [101, 102], "resolved_by": "person",
        "reason": "both kept: two chats",
    }  # fmt: skip
    assert open_cases(settings) == ["c2"]  # status no longer counts it
    assert [f["case_id"] for f in json.loads(run("flags", "--json")[1])] == ["c2"]
    code, out, err = run("verify")
    assert code == 0, out + err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nope", "--kind", "duplicate_tickets"], "case 'nope' has no duplicate_tickets flag"),
        (["c1", "--kind", "ticket_mismatch"], "case 'c1' has no ticket_mismatch flag"),
        (["c1", "--kind", "duplicates"], "--kind 'duplicates' is not a flag kind"),
        (["c1", "--kind", "duplicate_tickets", "--reason", " "], "--reason is empty"),
    ],
)
def test_a_wrong_case_kind_or_reason_is_refused_in_one_line(
    flagged: Path, args: list[str], says: str
) -> None:
    before = events(flagged, "case_flag_resolved")
    reason = [] if "--reason" in args else ["--reason", "checked"]
    code, _, err = run("flags", "resolve", *args, *reason)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"snapzen: error: {says}")
    assert events(flagged, "case_flag_resolved") == before


def test_a_flag_already_resolved_is_refused(flagged: Path) -> None:
    resolve = [
        "flags",
        "resolve",
        "c2",
        "--kind",
        "ticket_for_withheld",
        "--reason",
        "sent by hand",
    ]
    assert run(*resolve)[0] == 0
    code, _, err = run(*resolve)
    assert code == 2 and "the ticket_for_withheld flag of case 'c2' was already resolved" in err
    assert len(events(flagged, "case_flag_resolved")) == 1


def test_resolve_while_a_sync_holds_the_writer_lock_is_not_done(
    settings: Settings, flagged: Path
) -> None:
    # A sync's recovery may be re-flagging the case at this moment: the decision waits for
    # the lock (--wait) or is refused, never written beside it.
    with writer_lock(flagged):
        code, _, err = run("flags", "resolve", "c1", "--kind", "duplicate_tickets", "--reason", "x")
    assert code == 1 and "flag resolution NOT done" in err
    assert open_cases(settings) == ["c1", "c2"]
    assert events(flagged, "case_flag_resolved") == []


def test_verify_names_a_flag_closed_by_hand(flagged: Path) -> None:
    with sqlite3.connect(flagged) as conn:  # the alarm silenced without a decision
        conn.execute(
            "UPDATE case_flags SET resolved_at = '2026-12-01T00:00:00Z' WHERE case_id = 'c2'"
        )
    code, out, err = run("verify")
    assert code != 0
    said = out + err
    assert "case_flags: flag ticket_for_withheld of case c2 is resolved without" in said
