"""Issue 27 items 2 and 5, piece by piece: the Zendesk client against the sandbox (tickets
naming a user, requesters, users), the pure erasure response, and the sweep's profile step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from snapzen.clients.deletion import DeletionOutcome, UserErasure
from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands import erase_request, erasure_response
from snapzen.commands.erase import ErasurePlan, ErasureResult, TicketTarget
from snapzen.commands.retention_forget import delete_ticketless
from snapzen.ledger.rights import notices
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.errors import InvalidRecordError, NotFoundError
from snapzen.support.settings import load_settings

# ---------------------------------------------------------------- client against the sandbox


@pytest.fixture
def zendesk(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, ZendeskClient]]:
    with Sandbox(SandboxConfig(chats=0, job_seconds=0.01)) as box:
        for name, value in box.env().items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        yield box, ZendeskClient(settings.zendesk, HttpClient(settings.http, service="zendesk"))


def _later(box: Sandbox, seconds: float) -> None:
    """Move the sandbox's Zendesk clock ahead (past search's index lag, say)."""
    store, clock = box.app.store, box.app.store.clock
    store.clock = lambda: clock() + seconds


def _submitted_by(box: Sandbox, user_id: int) -> int:
    """A ticket for carl that ``user_id`` filed (the submitter), as another channel would."""
    with box.app.store.lock:
        return int(
            box.app.store.create_ticket(
                {"comment": {"body": "for carl"}, "requester": {"email": "carl@example.org"},
                 "submitter_id": user_id}, False, None,
            ).data["id"]
        )  # fmt: skip


def test_tickets_naming_a_user_as_requester_cc_or_submitter(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    own = store.add_email_ticket("ann@example.org", "mine")
    cc = store.add_email_ticket("bob@example.org", "cc ann", cc_emails=("ann@example.org",))
    ann = store.search_users("ann@example.org")[0]["id"]
    bob = store.search_users("bob@example.org")[0]["id"]
    submitted = _submitted_by(box, ann)
    lag = box.config.search_index_lag_seconds
    _later(box, lag)  # the submitter is found by search, which sees the tickets by now
    assert client.user_ticket_ids(ann) == sorted([own, cc, submitted])
    assert client.user_ticket_ids(bob) == [cc]
    assert client.ticket_requesters([own, cc, 999]) == {own: ann, cc: bob}
    assert client.show_user(ann) == {"id": ann, "role": "end-user", "email": "ann@example.org"}
    # A soft-deleted ticket no longer names anyone (once search's index knows); an unknown
    # user has no tickets.
    store.soft_delete(store.tickets[own], store.clock())
    _later(box, lag)
    assert client.user_ticket_ids(ann) == sorted([cc, submitted])
    assert client.user_ticket_ids(123) == [] and client.show_user(123) is None


# ---------------------------------------------------------------- the response (pure)


def _result(**outcomes: DeletionOutcome) -> ErasureResult:
    plan = ErasurePlan(subject_ref="ref")
    plan.to_delete = [TicketTarget(int(t[1:]), "c1", "w", None, None, None) for t in outcomes]
    plan.held = [7]
    result = ErasureResult(plan=plan, dry_run=False)
    result.deleted = [int(t[1:]) for t in outcomes]
    result.outcomes = {int(t[1:]): o for t, o in outcomes.items()}
    return result


def test_response_lists_snapengage_until_its_date_the_bin_and_foreign_tickets() -> None:
    result = _result(t1=DeletionOutcome(deleted=True, purged=True),
                     t2=DeletionOutcome(deleted=True, purged=False))  # fmt: skip
    users = UserErasure(blocked={77: [7, 900]})  # 7 is snapzen's own, held: not "foreign"
    chats = [
        erasure_response.Chat("old", date(2026, 1, 1)),  # SnapEngage deleted it by now
        erasure_response.Chat("c1", date(2026, 11, 20)),
    ]
    # The Art. 19 notices, as the erasure chains them (erase_request.chain_request).
    result.notices = erase_request.decide(
        result, chats, today=date(2026, 12, 6), snapengage_days=60
    )
    response = erasure_response.build(
        result, request_id="r1", today=date(2026, 12, 6), chats=chats, snapengage_days=60,
        users=users,
    )  # fmt: skip
    where = {(r["where"], r["id"]): r["until"] for r in response["remains"]}
    assert where[("SnapEngage", "c1")] == "2027-01-19" and ("SnapEngage", "old") not in where
    assert where[("Zendesk deleted-tickets bin", 2)] == "2027-01-05"
    assert ("Zendesk deleted-tickets bin", 1) not in where
    assert ("Zendesk", 900) in where and ("Zendesk", 7) not in where
    assert response["zendesk_profile"] == "kept_tickets_remain"
    assert [(n["recipient"], n["status"]) for n in response["art19_recipients"]] == [
        ("Zendesk", notices.NOTIFIED), ("SnapEngage", notices.TO_NOTIFY)
    ]  # fmt: skip
    text = erasure_response.render_text(response)
    assert "SnapEngage: chat c1, until 2027-01-19" in text
    assert "ticket not created by snapzen 900" in text
    assert (
        "SnapEngage: to be told (owed since 2026-12-06)" in text and "We keep ticket(s) 7" in text
    )


def test_nothing_held_anywhere_tells_nobody() -> None:
    response = erasure_response.build(
        _result(), request_id="r2", today=date(2026, 12, 6), chats=[], snapengage_days=60,
        users=None,
    )  # fmt: skip
    assert response["art19_recipients"] == []
    assert response["zendesk_profile"] == "not_requested"
    assert "nobody: no recipient held data about you" in erasure_response.render_text(response)


# ---------------------------------------------------------------- the sweep's profile step


class FakeProfiles:
    def __init__(self) -> None:
        self.users: dict[int, dict[str, Any]] = {}
        self.named: dict[int, list[int]] = {}
        self.refuse: set[int] = set()
        self.deleted: list[int] = []

    def ticket_requesters(self, ticket_ids: Any) -> dict[int, int]:
        return {}

    def show_user(self, user_id: int) -> dict[str, Any] | None:
        return self.users.get(user_id)

    def user_ticket_ids(self, user_id: int) -> list[int]:
        return list(self.named.get(user_id, []))

    def delete_user(self, user_id: int) -> None:
        if user_id in self.refuse:
            raise InvalidRecordError("422 Ann <ann@example.org>")
        if self.users.pop(user_id, None) is None:
            raise NotFoundError("404")
        self.deleted.append(user_id)

    def purge_deleted_user(self, user_id: int) -> None:
        pass


def test_profile_step_deletes_only_ticketless_end_users() -> None:
    api = FakeProfiles()
    for user_id, role in ((1, "end-user"), (2, "end-user"), (3, "agent"), (4, "end-user")):
        api.users[user_id] = {"id": user_id, "role": role}
    api.named[2] = [55]
    api.refuse.add(4)
    dry = delete_ticketless(api, [1, 2, 3, 4, 9], dry_run=True)
    assert dry.deleted == [1, 4] and dry.kept == {2: [55]} and api.deleted == []
    done = delete_ticketless(api, [1, 2, 3, 4, 9], dry_run=False)
    assert done.deleted == [1] and api.deleted == [1] and 3 in api.users
    assert list(done.failed) == [4] and "ann" not in done.failed[4].lower()
    # A ticket the dry run would delete does not count as naming them.
    assert delete_ticketless(api, [2], dry_run=True, leaving=[55]).deleted == [2]


class ArrivingTicket(FakeProfiles):
    """Another channel's ticket naming user 1 arrives while user 2 is checked."""

    def __init__(self) -> None:
        super().__init__()
        self.orphaned: list[int] = []  # deleted while a ticket named them

    def user_ticket_ids(self, user_id: int) -> list[int]:
        if user_id == 2:
            self.named[1] = [77]
        return super().user_ticket_ids(user_id)

    def delete_user(self, user_id: int) -> None:
        if self.named.get(user_id):
            self.orphaned.append(user_id)
        super().delete_user(user_id)


def test_each_profile_is_deleted_right_after_its_own_check() -> None:
    """The check that no ticket names a profile is the one guard against orphaning a ticket:
    each profile is deleted as soon as it is checked, not after every other profile's check
    (minutes of calls in a large sweep, during which a ticket may come to name it)."""
    api = ArrivingTicket()
    for user_id in (1, 2):
        api.users[user_id] = {"id": user_id, "role": "end-user"}
    done = delete_ticketless(api, [1, 2], dry_run=False)
    assert done.deleted == [1, 2] and api.orphaned == []


def test_a_profile_the_look_up_could_not_see_is_not_said_not_found() -> None:
    response = erasure_response.build(
        _result(), request_id="r3", today=date(2026, 12, 6), chats=[], snapengage_days=60,
        users=UserErasure(unconfirmed=[1003]),
    )  # fmt: skip
    assert response["zendesk_profile"] == "not_confirmed"
    assert response["deleted"]["zendesk_profile"] is False
