"""What Zendesk search's index lag ("it can take up to a few minutes for new tickets ... to be
indexed for search", the sandbox's default) does to each snapzen path that searches.

The first-pass guard and reconciliation through search read the lag window from the
incremental export (tests/unit/sandbox/test_export.py); so do the tickets naming a user as
submitter (`erase --delete-user`, the retention sweep's profiles) and those `ledger access
--email` lists for review, here: a ticket from the last minutes counts, one deleted in the last
minutes no longer does, and a sweep over many profiles reads the window once
(snapzen.clients.search_lag).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from snapzen.clients.deletion import ZendeskUserEraser
from snapzen.clients.http import HttpClient
from snapzen.clients.origin import mounted
from snapzen.clients.search_lag import SEARCH_LAG, LagWindow
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands.access_tickets import read_tickets
from snapzen.commands.retention_forget import delete_ticketless
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support import clock
from snapzen.support.settings import HttpSettings, ZendeskSettings


@pytest.fixture
def zendesk() -> Iterator[tuple[Sandbox, ZendeskClient]]:
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    assert box.config.search_index_lag_seconds > 0
    settings = ZendeskSettings(
        base_url=box.zendesk_base_url,
        email=box.config.zendesk_email,
        api_token=SecretStr(box.config.zendesk_token),
    )
    with mounted(box.base_url, box.adapter):
        yield box, ZendeskClient(settings, HttpClient(HttpSettings(), service="zendesk"))


def _later(box: Sandbox) -> None:
    store, clock = box.app.store, box.app.store.clock
    store.clock = lambda: clock() + box.config.search_index_lag_seconds


def test_a_ticket_filed_minutes_ago_by_the_user_still_names_them(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    ann = box.app.store.add_user("ann@example.org")
    filed = box.app.store.add_email_ticket(
        "carl@example.org", "for carl", submitter_email="ann@example.org"
    )
    assert client.user_ticket_ids(ann) == [filed]


def test_a_ticket_filed_a_while_ago_names_its_submitter(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    ann = box.app.store.add_user("ann@example.org")
    filed = box.app.store.add_email_ticket(
        "carl@example.org", "for carl", submitter_email="ann@example.org"
    )
    _later(box)
    assert client.user_ticket_ids(ann) == [filed]


def test_a_ticket_emailed_minutes_ago_is_listed_for_review(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    foreign = box.app.store.add_email_ticket("ann@example.org", "Invoice question")
    read = read_tickets(client, [], [], "ann@example.org")
    assert [entry["ticket_id"] for entry in read.for_review] == [foreign]


def test_a_ticket_emailed_a_while_ago_is_listed_for_review(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    foreign = box.app.store.add_email_ticket("ann@example.org", "Invoice question")
    _later(box)
    read = read_tickets(client, [], [], "ann@example.org")
    assert [entry["ticket_id"] for entry in read.for_review] == [foreign]


def test_a_ticket_deleted_minutes_ago_no_longer_names_its_submitter(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    ann = store.add_user("ann@example.org")
    filed = store.add_email_ticket(
        "carl@example.org", "for carl", submitter_email="ann@example.org"
    )
    _later(box)
    store.soft_delete(store.tickets[filed], store.clock())  # search still shows it a while
    assert client.search_tickets(f"type:ticket submitter:{ann}") != []
    assert client.user_ticket_ids(ann) == []


def test_the_sweep_reads_the_lag_window_once_for_all_profiles(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    people = [store.add_user(f"p{n}@example.org") for n in range(4)]
    filed = store.add_email_ticket("carl@example.org", "for carl", submitter_email="p2@example.org")
    swept = delete_ticketless(client, people, dry_run=True)
    assert swept.kept == {people[2]: [filed]}
    assert swept.deleted == [people[0], people[1], people[3]]
    assert box.state()["requests"]["zendesk.incremental_tickets"] == 1


def test_only_the_persons_own_tickets_from_minutes_ago_are_listed(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    theirs = store.add_email_ticket("ANN@example.org", "Invoice question")
    store.add_email_ticket("carl@example.org", "Carl's own question")
    gone = store.add_email_ticket("ann@example.org", "Withdrawn")
    store.soft_delete(store.tickets[gone], store.clock())
    read = read_tickets(client, [], [], "ann@example.org", include=[theirs])
    assert read.for_review == []
    assert [(t["ticket_id"], t["state"]) for t in read.tickets] == [(theirs, "present")]


def test_a_profile_whose_recent_tickets_could_not_be_read_is_kept_and_reported(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    ann = store.add_user("ann@example.org")
    store.add_email_ticket("carl@example.org", "for carl", submitter_email="ann@example.org")
    # snapzen's clock ahead of Zendesk's: the export refuses the window's start time.
    client.lag_window = LagWindow(client, lambda: clock.now() + SEARCH_LAG + timedelta(minutes=5))
    swept = delete_ticketless(client, [ann], dry_run=True)
    assert swept.deleted == [] and swept.failed == {ann: "lookup failed (BadRequestError)"}


def test_an_erasure_whose_recent_tickets_could_not_be_read_keeps_the_profile_and_says_so(
    zendesk: tuple[Sandbox, ZendeskClient],
) -> None:
    box, client = zendesk
    store = box.app.store
    ann = store.add_user("ann@example.org", created=-math.inf)  # search shows her profile
    store.add_email_ticket("carl@example.org", "for carl", submitter_email="ann@example.org")
    client.lag_window = LagWindow(client, lambda: clock.now() + SEARCH_LAG + timedelta(minutes=5))
    done = ZendeskUserEraser(client, "ann@example.org").erase()
    assert done.deleted == [] and not done.complete
    assert done.failed == {ann: "tickets naming it not read (BadRequestError)"}
    assert store.users[ann]["active"]


def test_a_dry_sweep_says_profiles_were_not_all_checked_when_their_tickets_could_not_be_read(
    zendesk: tuple[Sandbox, ZendeskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import date

    from snapzen.commands import retention_forget
    from snapzen.commands.retention import DueTicket, SweepResult
    from snapzen.commands.summaries import said

    box, client = zendesk
    store = box.app.store
    store.add_user("ann@example.org")
    due = store.add_email_ticket("ann@example.org", "her chat, due for deletion")
    client.lag_window = LagWindow(client, lambda: clock.now() + SEARCH_LAG + timedelta(minutes=5))
    monkeypatch.setattr(retention_forget, "zendesk_from", lambda _settings: client)
    planned = SweepResult(as_of=date(2026, 12, 1), dry_run=True, purge=False, due=1)
    planned.planned = [DueTicket("case-1", due)]
    result = retention_forget.plan_profiles(None, planned)  # type: ignore[arg-type]
    assert result.users_planned == [] and not result.users_checked
    shown = " ".join(text for _, text in said("sweep", r=result))
    assert "Zendesk end-user profiles: not all checked" in shown
