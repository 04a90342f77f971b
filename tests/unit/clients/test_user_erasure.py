"""ZendeskUserEraser's two sources: users/search by email (which indexes a new profile minutes
late) and the requesters of the person's tickets, each kept only when its profile shows this
exact email and, to be deleted, the end-user role."""

from __future__ import annotations

from snapzen.clients.deletion import Requesters
from tests.integration.ledger.test_erase import FakeUserApi, eraser
from tests.ledger_fixtures import ALICE


def test_a_requester_search_does_not_show_yet_is_deleted_one_with_another_email_is_not() -> None:
    api = FakeUserApi()
    api.add(77, ALICE, indexed=False)  # synced minutes ago: search does not show it yet
    api.add(88, "someone.else@example.org")  # requester of one of the tickets, not her
    planned = eraser(api).plan(Requesters((77, 88)))
    assert planned.to_delete == [77] and planned.other_email == [88]
    done = eraser(api).erase(Requesters((77, 88)))
    assert done.deleted == [77] and done.complete
    assert api.purged == {77} and 88 in api.live
    assert ("delete", 88) not in api.calls


def test_without_the_requesters_search_alone_misses_the_new_profile() -> None:
    api = FakeUserApi()
    api.add(77, ALICE, indexed=False)
    assert eraser(api).plan().to_delete == []


def test_the_email_matches_case_insensitively_and_staff_are_refused() -> None:
    api = FakeUserApi()
    api.add(77, f" {ALICE.upper()} ", indexed=False)
    api.add(5, ALICE.title(), role="agent", indexed=False)
    done = eraser(api).erase(Requesters((5, 77)))
    assert done.deleted == [77] and done.refused == [5] and not done.complete
    assert 5 in api.live and ("delete", 5) not in api.calls


def test_a_profile_both_sources_find_is_read_once_and_a_gone_one_is_skipped() -> None:
    api = FakeUserApi()
    api.add(77, ALICE)
    # 404: deleted by hand, or by an earlier run
    planned = eraser(api).plan(Requesters((77, 404)))
    assert planned.to_delete == [77] and planned.other_email == []
    assert api.calls == [("search", 0), ("show", 404)]


def test_requesters_read_live_tickets_then_the_lag_window_for_deleted_ones() -> None:
    api = FakeUserApi()
    api.requester_of = {1001: 77, 1002: 77}
    api.lag_window.recent = {
        1003: {"id": 1003, "status": "deleted", "requester_id": 78},
        1004: {"id": 1004, "status": "deleted", "requester_id": True},  # not an id
    }
    # 1005: neither live nor changed lately, so deleted long ago: search shows its requester
    assert eraser(api).requesters([1001, 1002, 1003, 1004, 1005]) == Requesters((77, 78))
    assert eraser(api).requesters([]) == Requesters()


def test_none_found_is_not_confirmed_when_the_export_refused_the_read() -> None:
    api = FakeUserApi()
    api.add(77, ALICE, indexed=False)  # her profile, made minutes ago: search does not show it
    api.lag_window.unread = True  # and the ticket, deleted minutes ago, is not in the window
    requesters = eraser(api).requesters([1003])
    assert requesters == Requesters((), (1003,))
    done = eraser(api).erase(requesters)
    assert done.unconfirmed == [1003] and not done.complete and done.deleted == []
    # Once search shows a profile with this email, that is hers: nothing is unconfirmed.
    api.index.append(api.live[77])
    assert eraser(api).plan(requesters).to_delete == [77]
    assert eraser(api).plan(requesters).unconfirmed == []
