"""Bulk reads for reconciliation: the sandbox's search export and cursor-based incremental
ticket export (paging, budgets), the client methods that read them, and find_tickets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from structlog.testing import capture_logs

from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands.init import snapzen_tickets
from snapzen.commands.reconcile import find_tickets
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.settings import HttpSettings, ZendeskSettings
from tests.sync_parts import FakeClock as Clock

TIMEOUT = 10


def _ticket(external_id: str | None, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "subject": "chat",
        "requester": {"name": "V", "email": "v@example.com"},
        "status": "solved",
        "created_at": "2026-11-30T10:00:00Z",
        "tags": tags if tags is not None else ["snapengage"],
        "comments": [{"body": "hi", "public": False}],
    }


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=0, export_page_size=2)) as box:
        yield box


@pytest.fixture
def http(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)
    return session


def _create(http: requests.Session, sb: Sandbox, ticket: dict[str, Any]) -> int:
    done = http.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets", json={"ticket": ticket}, timeout=TIMEOUT
    )
    assert done.status_code == 201, done.text
    return int(done.json()["ticket"]["id"])


def _client(sb: Sandbox, clock: Clock) -> ZendeskClient:
    settings = ZendeskSettings(
        base_url=sb.zendesk_base_url,
        email=sb.config.zendesk_email,
        api_token=SecretStr(sb.config.zendesk_token),
    )
    http = HttpClient(HttpSettings(max_attempts=3), service="zendesk", sleep=clock.sleep)
    return ZendeskClient(settings, http, clock=clock, sleep=clock.sleep)


def _seed(http: requests.Session, sb: Sandbox) -> dict[str, int]:
    ids = {
        "a": _create(http, sb, _ticket("snapengage:a")),
        "b1": _create(http, sb, _ticket("snapengage:b")),
        "b2": _create(http, sb, _ticket("snapengage:b")),  # a second ticket for one case
        "other": _create(http, sb, _ticket("crm:42", tags=["crm"])),
        "gone": _create(http, sb, _ticket("snapengage:gone")),
    }
    assert http.delete(
        f"{sb.zendesk_base_url}/api/v2/tickets/{ids['gone']}.json", timeout=TIMEOUT
    ).ok
    _let_search_index(sb)
    return ids


def _let_search_index(sb: Sandbox) -> None:
    """Move the account's clock past search's index lag: what search reads is indexed."""
    store, clock = sb.app.store, sb.app.store.clock
    store.clock = lambda: clock() + sb.config.search_index_lag_seconds + 1


def test_incremental_export_pages_to_end_of_stream_paced_at_ten_a_minute(
    sb: Sandbox, http: requests.Session
) -> None:
    ids = _seed(http, sb)
    clock = Clock()
    with capture_logs() as logs:
        pages = list(_client(sb, clock).incremental_tickets(int(time.time()) - 3600))
    assert [len(p) for p in pages] == [2, 2, 1]  # export_page_size=2, every ticket once
    got = [t["id"] for page in pages for t in page]
    assert sorted(got) == sorted(ids.values())
    gone = next(t for page in pages for t in page if t["id"] == ids["gone"])
    assert gone["status"] == "deleted"  # deleted tickets are in the export, marked
    # 10 requests a minute: 6 s between requests, none before the first.
    assert clock.sleeps == [pytest.approx(6.0), pytest.approx(6.0)]
    # Each wait is logged under the endpoint's budget name.
    assert [e["endpoint"] for e in logs if e["event"] == "zendesk.export_pacing"] == [
        "incremental",
        "incremental",
    ]


def test_an_updated_or_deleted_ticket_comes_again_later_in_the_export(
    sb: Sandbox, http: requests.Session
) -> None:
    """The export is in the order tickets last changed: an edit (PUT tickets/{id}) or a
    deletion shows a ticket again after those that did not change, with its new state."""
    first, second, third = (_create(http, sb, _ticket(f"snapengage:{c}")) for c in "xyz")
    url = f"{sb.zendesk_base_url}/api/v2/tickets"
    edited = http.put(
        f"{url}/{first}.json", json={"ticket": {"external_id": "snapengage:w"}}, timeout=TIMEOUT
    )
    assert edited.status_code == 200 and edited.json()["ticket"]["external_id"] == "snapengage:w"
    assert http.delete(f"{url}/{second}.json", timeout=TIMEOUT).status_code == 204
    pages = list(_client(sb, Clock()).incremental_tickets(int(time.time()) - 3600))
    shown = [(t["id"], t["external_id"], t["status"]) for page in pages for t in page]
    assert shown == [
        (third, "snapengage:z", "solved"),
        (first, "snapengage:w", "solved"),
        (second, "snapengage:y", "deleted"),
    ]
    # Zendesk refuses to update a closed ticket, and a deleted one is not found.
    closed = _create(http, sb, {**_ticket("snapengage:c"), "status": "closed"})
    refused = http.put(
        f"{url}/{closed}.json", json={"ticket": {"external_id": "x"}}, timeout=TIMEOUT
    )
    assert refused.status_code == 422 and refused.json()["error"] == "RecordInvalid"
    gone = http.put(f"{url}/{second}.json", json={"ticket": {"status": "open"}}, timeout=TIMEOUT)
    assert gone.status_code == 404


def test_incremental_export_refuses_a_start_time_less_than_a_minute_ago(
    sb: Sandbox, http: requests.Session
) -> None:
    answer = http.get(
        f"{sb.zendesk_base_url}/api/v2/incremental/tickets/cursor.json",
        params={"start_time": int(time.time())},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400


def test_incremental_export_has_its_own_budget_with_retry_after() -> None:
    with Sandbox(SandboxConfig(chats=0, incremental_export_rate_per_minute=2)) as box:
        session = requests.Session()
        session.auth = (f"{box.config.zendesk_email}/token", box.config.zendesk_token)
        url = f"{box.zendesk_base_url}/api/v2/incremental/tickets/cursor.json"
        params = {"start_time": int(time.time()) - 3600}
        codes = [session.get(url, params=params, timeout=TIMEOUT) for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert int(codes[2].headers["Retry-After"]) >= 1
        assert codes[2].json()["error"] == "APIRateLimitExceeded"
        # Other endpoints keep the account budget.
        assert session.get(f"{box.zendesk_base_url}/api/v2/tickets.json", timeout=TIMEOUT).ok


def test_search_export_follows_links_next_and_leaves_out_deleted(
    sb: Sandbox, http: requests.Session
) -> None:
    ids = _seed(http, sb)
    clock = Clock()
    with capture_logs() as logs:
        pages = list(_client(sb, clock).search_export("type:ticket tags:snapengage", page_size=2))
    got = sorted(t["id"] for page in pages for t in page)
    assert got == sorted([ids["a"], ids["b1"], ids["b2"]])
    assert [len(p) for p in pages] == [2, 1]
    assert clock.sleeps == [pytest.approx(0.6)]  # 100 requests a minute
    paced = [e["endpoint"] for e in logs if e["event"] == "zendesk.export_pacing"]
    assert paced == ["search_export"]


def test_find_tickets_groups_by_case_and_skips_deleted_and_foreign(
    sb: Sandbox, http: requests.Session
) -> None:
    ids = _seed(http, sb)
    now = datetime.now(UTC)
    for via in ("incremental", "search"):
        found, result, _ = find_tickets(_client(sb, Clock()), now - timedelta(days=1), now, via)
        assert set(found) == {"a", "b"}
        assert [t.ticket_id for t in found["b"]] == sorted([ids["b1"], ids["b2"]])
        assert found["a"][0].created_at == "2026-11-30T10:00:00Z"
        assert result.cases_found == 2


def test_tickets_search_has_not_indexed_yet_are_found_through_the_export(
    sb: Sandbox, http: requests.Session
) -> None:
    """Search lags (the sandbox's default index lag): reconciling through search and the
    first-pass guard both find tickets created a moment ago, by another ledger say."""
    made = [_create(http, sb, _ticket(f"snapengage:{c}")) for c in "pq"]
    client = _client(sb, Clock())
    assert client.search_count("type:ticket tags:snapengage") == 0  # not indexed yet
    now = datetime.now(UTC)
    found, _, _ = find_tickets(client, now - timedelta(days=1), now, "search")
    assert sorted(t.ticket_id for ts in found.values() for t in ts) == made
    assert snapzen_tickets(client) == 2  # `init` and the first pass refuse
    assert http.delete(f"{sb.zendesk_base_url}/api/v2/tickets/{made[0]}.json").ok
    assert snapzen_tickets(client) == 1


def test_search_count_counts_live_snapengage_tickets_and_users_are_shown_by_id(
    sb: Sandbox, http: requests.Session
) -> None:
    ids = _seed(http, sb)
    client = _client(sb, Clock())
    assert client.search_count("type:ticket tags:snapengage") == 3  # not the deleted one
    assert client.search_count("type:ticket tags:nothing-has-it") == 0
    requester = next(t["requester_id"] for t in sb.tickets() if t["id"] == ids["a"])
    shown = client.show_users([requester, 999_999_999])
    assert shown == {requester: "v@example.com"}  # unknown ids are left out


def test_search_and_search_export_share_one_query_language(
    sb: Sandbox, http: requests.Session
) -> None:
    ids = _seed(http, sb)
    base = f"{sb.zendesk_base_url}/api/v2"

    def export(query: str) -> requests.Response:
        params = {"query": query, "filter[type]": "ticket"}
        return http.get(f"{base}/search/export.json", params=params, timeout=TIMEOUT)

    prefix = export("type:ticket external_id:snapengage:b*").json()["results"]
    assert sorted(t["id"] for t in prefix) == sorted([ids["b1"], ids["b2"]])
    assert export("created>2026-12").json()["results"] == []
    assert len(export("created<2026-12 tags:crm").json()["results"]) == 1
    # What the sandbox cannot answer is refused, never silently widened, on both endpoints.
    for query in ("type:ticket hello", "priority:high"):
        assert export(query).status_code == 400
        searched = http.get(f"{base}/search.json", params={"query": query}, timeout=TIMEOUT)
        assert searched.status_code == 400
    found = http.get(f"{base}/search.json", params={"query": "tag:crm"}, timeout=TIMEOUT)
    assert [t["id"] for t in found.json()["results"]] == [ids["other"]]
