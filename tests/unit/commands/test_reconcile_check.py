"""The comparison behind `snapzen ledger reconcile`, as a pure function over the ledger's cases
and the tickets Zendesk's export shows: each kind of finding, and what is not one."""

from __future__ import annotations

from snapzen.commands.reconcile_check import Kind, SeenTicket, compare
from snapzen.ledger.evidence.reconciliation import LedgerCase

SYNCED_AT = "2026-12-01T10:00:00Z"


def synced(case_id: str, ticket_id: int, *, deleted: bool = False) -> LedgerCase:
    return LedgerCase(case_id, "synced", ticket_id, SYNCED_AT, deleted)


def ticket(ticket_id: int, case_id: str | None, *, deleted: bool = False) -> SeenTicket:
    external = f"snapengage:{case_id}" if case_id is not None else None
    return SeenTicket(ticket_id, external, deleted)


def kinds(result: object) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(f.kind.value, f.case_id, tuple(f.ticket_ids)) for f in result.findings]  # type: ignore[attr-defined]


def test_a_ledger_that_agrees_with_zendesk_has_no_finding() -> None:
    cases = [synced("a", 1), synced("b", 2), LedgerCase("c", "withheld", None, None)]
    tickets = [ticket(1, "a"), ticket(2, "b"), SeenTicket(3, "crm:77", False), ticket(4, None)]
    result = compare(cases, tickets)
    assert result.findings == []
    assert (result.cases_checked, result.tickets_seen, result.not_judged) == (2, 4, 0)
    assert result.counts() == {"missing": 0, "unknown": 0, "duplicated": 0, "wrong_case": 0}


def test_a_ticket_absent_or_deleted_in_zendesk_is_missing() -> None:
    result = compare([synced("a", 1), synced("b", 2)], [ticket(1, "a", deleted=True)])
    assert kinds(result) == [("missing", "a", (1,)), ("missing", "b", (2,))]
    assert "deleted in Zendesk" in result.findings[0].detail
    assert "not in Zendesk" in result.findings[1].detail
    assert "restore it from Zendesk's deleted tickets" in result.findings[0].suggestion


def test_a_ticket_snapzen_deleted_by_erasure_or_retention_is_not_missing() -> None:
    result = compare([synced("a", 1, deleted=True)], [ticket(1, "a", deleted=True)])
    assert result.findings == [] and result.cases_checked == 0


def test_the_last_state_of_a_ticket_read_twice_counts() -> None:
    """The export shows a ticket again when it changes: deleted after it was read live."""
    result = compare([synced("a", 1)], [ticket(1, "a"), ticket(1, "a", deleted=True)])
    assert kinds(result) == [("missing", "a", (1,))]
    assert compare([synced("a", 1)], [ticket(1, "a", deleted=True), ticket(1, "a")]).findings == []


def test_a_missing_ticket_names_the_other_ticket_zendesk_has_for_the_case() -> None:
    result = compare([synced("a", 1)], [ticket(1, "a", deleted=True), ticket(9, "a")])
    assert kinds(result) == [("missing", "a", (1, 9))]
    assert "ticket(s) 9" in result.findings[0].detail
    assert "review by hand" in result.findings[0].suggestion


def test_absence_is_not_judged_from_an_incomplete_read_or_for_a_case_synced_since() -> None:
    cases = [synced("a", 1), LedgerCase("late", "synced", 2, "2026-12-02T00:00:01Z")]
    partial = compare(cases, [], complete=False)
    assert partial.findings == [] and partial.not_judged == 2
    # A deletion the export did show is judged even when the read stopped early.
    seen_deleted = compare(cases, [ticket(1, "a", deleted=True)], complete=False)
    assert kinds(seen_deleted) == [("missing", "a", (1,))]
    recent = compare(cases, [ticket(1, "a")], export_started="2026-12-02T00:00:00Z")
    assert recent.findings == [] and recent.not_judged == 1


def test_a_deletion_the_export_shows_is_judged_for_a_case_synced_as_the_check_started() -> None:
    """Times are kept to the second: a case synced in the second the export started (or
    after) may have a ticket the export passed before it existed, so its absence proves
    nothing; but a ticket the export shows deleted was seen, and someone deleted it."""
    started = "2026-12-02T00:00:00Z"
    same_second = LedgerCase("a", "synced", 1, started)
    after = LedgerCase("b", "synced", 2, "2026-12-02T00:00:01Z")
    absent = LedgerCase("c", "synced", 3, started)
    shown = [ticket(1, "a", deleted=True), ticket(2, "b", deleted=True)]
    result = compare([same_second, after, absent], shown, export_started=started)
    assert kinds(result) == [("missing", "a", (1,)), ("missing", "b", (2,))]
    assert "deleted in Zendesk" in result.findings[0].detail
    assert result.not_judged == 1 and result.cases_checked == 3


def test_absence_is_not_judged_for_a_chat_older_than_the_exports_start() -> None:
    """`--since` later than a chat: its ticket may not have changed since, so not shown."""
    old = LedgerCase("old", "synced", 1, SYNCED_AT, False, "2026-11-01T09:00:00Z")
    new = LedgerCase("new", "synced", 2, SYNCED_AT, False, "2026-11-20T09:00:00Z")
    result = compare([old, new], [], since="2026-11-15T00:00:00Z")
    assert kinds(result) == [("missing", "new", (2,))] and result.not_judged == 1
    shown = compare([old], [ticket(1, "old", deleted=True)], since="2026-11-15T00:00:00Z")
    assert kinds(shown) == [("missing", "old", (1,))]  # a deletion it did show is judged


def test_a_snapengage_ticket_without_a_case_is_unknown() -> None:
    result = compare([synced("a", 1)], [ticket(1, "a"), ticket(5, "foreign"), ticket(6, "foreign")])
    assert kinds(result) == [("unknown", "foreign", (5, 6))]
    assert "no case in the ledger" in result.findings[0].detail
    assert "init --adopt" in result.findings[0].suggestion


def test_a_ticket_for_a_case_the_ledger_did_not_send_is_unknown_but_in_flight_is_not() -> None:
    cases = [LedgerCase("f", "failed", None, None), LedgerCase("p", "pushing", None, None)]
    result = compare(cases, [ticket(7, "f"), ticket(8, "p")])
    assert kinds(result) == [("unknown", "f", (7,))]
    assert "failed" in result.findings[0].detail
    assert "snapzen retry" in result.findings[0].suggestion


def test_two_live_tickets_for_one_case_are_duplicated_the_ledgers_first() -> None:
    result = compare(
        [synced("a", 4)], [ticket(2, "a"), ticket(4, "a"), ticket(3, "a", deleted=True)]
    )
    assert kinds(result) == [("duplicated", "a", (4, 2))]
    assert "keep ticket 4" in result.findings[0].suggestion


def test_swapped_ticket_ids_point_at_the_wrong_case() -> None:
    cases = [synced("a", 2), synced("b", 1), synced("c", 3)]
    tickets = [ticket(1, "a"), ticket(2, "b"), SeenTicket(3, None, False)]
    result = compare(cases, tickets)
    assert kinds(result) == [
        ("wrong_case", "a", (2, 1)),
        ("wrong_case", "b", (1, 2)),
        ("wrong_case", "c", (3,)),
    ]
    assert "carries snapengage:b" in result.findings[0].detail
    assert "carries no external_id" in result.findings[2].detail


def test_findings_come_by_kind_then_case() -> None:
    cases = [synced("z", 1), synced("b", 2), synced("a", 3)]
    tickets = [ticket(2, "a"), ticket(3, "a"), ticket(4, "new")]
    assert [(f.kind, f.case_id) for f in compare(cases, tickets).findings] == [
        (Kind.missing, "z"),
        (Kind.unknown, "new"),
        (Kind.duplicated, "a"),  # ticket 2 carries a too
        (Kind.wrong_case, "b"),
    ]


def test_export_items_without_an_integer_id_are_ignored() -> None:
    assert SeenTicket.of({"id": "12", "external_id": "snapengage:a"}) is None
    assert SeenTicket.of({"id": True}) is None
    assert SeenTicket.of({"id": 3, "external_id": 5, "status": "deleted"}) == SeenTicket(
        3, None, True
    )
