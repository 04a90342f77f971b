"""Which open flags `ledger reconcile` closes (flag_desk.judge, pure): only when the tickets
Zendesk now holds for the case are what the ledger says, and only from tickets the export
showed."""

from __future__ import annotations

from typing import Any

import pytest

from snapzen.commands.flag_desk import Settled, judge
from snapzen.commands.reconcile import SeenTicket
from snapzen.ledger.evidence.reconciliation import LedgerCase

STARTED = "2026-12-01T12:00:00Z"  # when the export began
BEFORE = "2026-11-30T09:00:00Z"


def flag(kind: str, *tickets: int, case: str = "c1", at: str = BEFORE) -> dict[str, Any]:
    return {"case_id": case, "kind": kind, "ticket_ids": list(tickets), "flagged_at": at}


def seen(ticket_id: int, case: str | None = "c1", *, deleted: bool = False) -> SeenTicket:
    return SeenTicket(ticket_id, f"snapengage:{case}" if case else None, deleted)


SYNCED = LedgerCase("c1", "synced", 10, BEFORE)
WITHHELD = LedgerCase("c1", "withheld", None, None)


def settled(flags: list[dict[str, Any]], case: LedgerCase, *tickets: SeenTicket) -> list[Settled]:
    return judge(flags, [case], {t.ticket_id: t for t in tickets}, export_started=STARTED)


@pytest.mark.parametrize(
    ("kind", "case", "tickets", "closed"),
    [
        # duplicate_tickets: the ledger's ticket stays, the other is deleted...
        ("duplicate_tickets", SYNCED, [seen(10), seen(11, deleted=True)], (10,)),
        # ... or merged with its external_id cleared: no longer the chat's ticket.
        ("duplicate_tickets", SYNCED, [seen(10), seen(11, case=None)], (10,)),
        ("duplicate_tickets", SYNCED, [seen(10), seen(11)], None),  # both still live
        ("duplicate_tickets", SYNCED, [seen(10)], None),  # 11 not read: nothing known
        ("duplicate_tickets", SYNCED, [seen(10, deleted=True), seen(11)], None),  # wrong one gone
        # ticket_mismatch: Zendesk has the ledger's ticket (10) and no longer the other.
        ("ticket_mismatch", SYNCED, [seen(10), seen(11, deleted=True)], (10,)),
        ("ticket_mismatch", SYNCED, [seen(11, deleted=True)], None),  # 10 not read
        ("ticket_mismatch", SYNCED, [seen(10, case="c9"), seen(11, deleted=True)], None),
        # ticket_for_withheld: the ticket is gone.
        ("ticket_for_withheld", WITHHELD, [seen(11, deleted=True)], ()),
        ("ticket_for_withheld", WITHHELD, [seen(11)], None),
        ("ticket_for_withheld", WITHHELD, [], None),  # not read
    ],
)
def test_a_flag_closes_only_when_zendesk_shows_what_the_ledger_says(
    kind: str, case: LedgerCase, tickets: list[SeenTicket], closed: tuple[int, ...] | None
) -> None:
    found = settled([flag(kind, 11)], case, *tickets)
    assert found == ([] if closed is None else [Settled("c1", kind, list(closed))])


def test_a_flag_raised_after_the_export_began_waits_for_the_next_check() -> None:
    # A sync's recovery may flag a ticket made after the export passed it.
    late = flag("duplicate_tickets", 10, 11, at=STARTED)
    assert settled([late], SYNCED, seen(10), seen(11, deleted=True)) == []


def test_a_case_whose_ticket_snapzen_deleted_or_that_has_none_is_left_to_a_person() -> None:
    erased = LedgerCase("c1", "synced", 10, BEFORE, deleted=True)
    assert settled([flag("duplicate_tickets", 10, 11)], erased, seen(11, deleted=True)) == []
    pending = LedgerCase("c1", "pending", None, None)
    assert settled([flag("ticket_mismatch", 11)], pending, seen(11, deleted=True)) == []
    assert judge([flag("duplicate_tickets", 11)], [], {}, export_started=STARTED) == []
