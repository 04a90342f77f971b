"""The Zendesk client against answers shaped as real accounts send them, field for field.

The fixtures are written here (values invented), following the shapes, status values, error
bodies and header spellings of recorded traffic from live accounts: job statuses queued /
working / completed with ``{index, id, account_id}`` or ``{id, error, details}`` items, the
``{"success": true}`` results of deletions, ``users/me``, ``tickets/show_many``, the
``job_statuses`` list, the 401/403 bodies, and the rate-limit headers of 2023 and 2024
recordings (``rate-limit-reset``, ``ratelimit-reset``, ``X-Rate-Limit-Remaining``,
``zendesk-ratelimit-tickets-index``).
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from pydantic import SecretStr

from snapzen.clients.http import HttpClient
from snapzen.clients.pacing import ListBudget, RateLimitPacer
from snapzen.clients.zendesk import ZendeskClient
from snapzen.policy.models import JobStatus
from snapzen.support.errors import AuthError, RetriesExhausted
from snapzen.support.settings import HttpSettings, ZendeskSettings
from snapzen.sync.results_check import check_results, lookup_is_conclusive
from tests.sync_parts import FakeClock

BASE = "https://acme.zendesk.com"
ACCOUNT = 10923481

# Headers as a 2024 recording carries them on a ticketing endpoint.
HEADERS_2024 = {
    "Content-Type": "application/json; charset=utf-8",
    "X-Rate-Limit": "700",
    "X-Rate-Limit-Remaining": "699",
    "ratelimit-limit": "700",
    "ratelimit-remaining": "699",
    "ratelimit-reset": "37",
    "X-Zendesk-Origin-Server": "app-server-7",
    "X-Request-Id": "8f1e2d3c4b5a6978-SJC",
}
# A 2023 recording: the reset spelled with a hyphen, no ratelimit-* triple.
HEADERS_2023 = {
    "Content-Type": "application/json; charset=utf-8",
    "X-Rate-Limit": "400",
    "X-Rate-Limit-Remaining": "3",
    "rate-limit-reset": "21",
}


def make_client(clock: FakeClock) -> ZendeskClient:
    settings = ZendeskSettings(
        base_url=BASE, email="ops@acme.example", api_token=SecretStr("zd-token-4e2a9c")
    )
    http = HttpClient(HttpSettings(max_attempts=3), service="zendesk", sleep=clock.sleep)
    return ZendeskClient(settings, http, clock=clock, sleep=clock.sleep)


def job(status: str, results: Any = None, **extra: Any) -> dict[str, Any]:
    """A job status as recorded: url, total/progress, message null until done."""
    job_id = extra.pop("id", "V3-5d4e1f0a9b8c7d6e5f4a3b2c1d0e9f8a")
    return {
        "id": job_id,
        "job_type": extra.pop("job_type", "bulk_import_tickets"),
        "url": f"{BASE}/api/v2/job_statuses/{job_id}.json",
        "total": extra.pop("total", 2),
        "progress": extra.pop("progress", None),
        "status": status,
        "message": extra.pop("message", None),
        "results": results,
        **extra,
    }


def ticket(ticket_id: int, external_id: str | None) -> dict[str, Any]:
    """A ticket as tickets/show_many answers it (the fields that matter here and a few more)."""
    return {
        "url": f"{BASE}/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": external_id,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2026-03-14T09:26:53Z",
        "updated_at": "2026-03-14T09:28:53Z",
        "type": None,
        "subject": "Chat with a visitor on 2026-03-14",
        "status": "solved",
        "requester_id": 384920117,
        "submitter_id": 384920117,
        "tags": ["snapengage"],
        "is_public": False,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=5000.0)


# ------------------------------------------------------------------ job statuses


@responses.activate
def test_job_status_lifecycle_as_recorded(clock: FakeClock) -> None:
    client = make_client(clock)
    url = f"{BASE}/api/v2/job_statuses/show_many"
    queued = job("queued", None, progress=None)
    working = job("working", None, progress=1)
    done = job(
        "completed",
        [
            {"index": 0, "id": 50231, "account_id": ACCOUNT},
            {"index": 1, "error": "TicketCreateFailed", "details": "Description: cannot be blank"},
        ],
        progress=2,
        message="Completed at 2026-03-14 09:30:02 +0000",
    )
    for body in (queued, working, done):
        responses.add(responses.GET, url, json={"job_statuses": [body]}, headers=HEADERS_2024)
    states = [client.job_statuses([queued["id"]])[queued["id"]] for _ in range(3)]
    assert [s.status for s in states] == ["queued", "working", "completed"]
    assert [s.finished for s in states] == [False, False, True]
    assert states[0].results is None and states[0].job_type == "bulk_import_tickets"
    items = states[2].result_items
    assert (items[0].index, items[0].id) == (0, 50231)
    assert (items[1].error, items[1].details) == (
        "TicketCreateFailed",
        "Description: cannot be blank",
    )


@responses.activate
def test_deletion_job_results_are_success_items(clock: FakeClock) -> None:
    client = make_client(clock)
    body = job("completed", [{"success": True}], job_type="bulk_delete_tickets", total=None)
    responses.add(
        responses.DELETE,
        f"{BASE}/api/v2/tickets/destroy_many",
        json={"job_status": body},
        headers=HEADERS_2024,
    )
    status = client.destroy_tickets([50231])
    assert status.finished and status.result_items[0].success is True


# ------------------------------------------------------------------ results read back


@responses.activate
def test_results_in_doubt_are_never_recorded_against_the_wrong_case(
    clock: FakeClock,
) -> None:
    """Job results carry no external_id; an answer in doubt (here shifted by one, an id
    named twice) is read back and each case gets its own ticket."""
    client = make_client(clock)
    cases = ["c1", "c2", "c3"]
    # Zendesk created c1->501, c2->502, c3->503, but the results are shifted by one.
    shifted = job(
        "completed",
        [
            {"index": 0, "id": 502, "account_id": ACCOUNT},
            {"index": 1, "id": 503, "account_id": ACCOUNT},
            {"index": 2, "id": 503, "account_id": ACCOUNT},
        ],
        total=3,
        progress=3,
    )
    shown = [ticket(502, "snapengage:c2"), ticket(503, "snapengage:c3")]
    responses.add(
        responses.GET,
        f"{BASE}/api/v2/tickets/show_many",
        json={"tickets": shown, "next_page": None, "previous_page": None, "count": 2},
        headers=HEADERS_2024,
    )
    check = check_results(cases, JobStatus.model_validate(shifted), client.show_tickets)
    assert check.synced == {"c2": 502, "c3": 503}
    assert check.unknown == ["c1"]  # looked up by external_id instead
    assert {c for c, _, _ in check.mismatched} == {"c1", "c2"}
    (call,) = responses.calls
    assert "ids=502%2C503" in (call.request.url or "")


@responses.activate
def test_a_clean_answer_is_taken_by_index_without_a_request(clock: FakeClock) -> None:
    """Every index once, an id for each, no error, ids distinct: Zendesk's documented mapping."""
    client = make_client(clock)
    clean = job(
        "completed",
        [{"index": i, "id": 501 + i, "account_id": ACCOUNT} for i in (2, 0, 1)],
        total=3,
        progress=3,
    )
    check = check_results(["c1", "c2", "c3"], JobStatus.model_validate(clean), client.show_tickets)
    assert check.synced == {"c1": 501, "c2": 502, "c3": 503}
    assert not check.unknown and not check.failures and not check.mismatched
    assert len(responses.calls) == 0


@responses.activate
def test_show_tickets_asks_at_most_100_ids_a_call_and_skips_unknown_ids(clock: FakeClock) -> None:
    client = make_client(clock)
    for _ in range(3):
        responses.add(
            responses.GET,
            f"{BASE}/api/v2/tickets/show_many",
            json={"tickets": [ticket(7, "snapengage:x")], "next_page": None, "count": 1},
            headers=HEADERS_2024,
        )
    found = client.show_tickets(list(range(1, 251)))
    assert found == {7: "snapengage:x"}
    assert len(responses.calls) == 3


# ------------------------------------------------------------------ the job_statuses list


@responses.activate
def test_job_statuses_list_gives_the_unfinished_jobs(clock: FakeClock) -> None:
    client = make_client(clock)
    listing = {
        "job_statuses": [
            job("working", None, id="V3-a1", progress=40, total=100),
            job("completed", [{"success": True}], id="V3-b2", job_type="bulk_delete_tickets"),
            job("failed", None, id="V3-c3", message="Internal error"),
        ],
        "next_page": None,
        "previous_page": None,
        "count": 3,
    }
    responses.add(responses.GET, f"{BASE}/api/v2/job_statuses", json=listing, headers=HEADERS_2024)
    unfinished = client.unfinished_jobs()
    assert [j.id for j in unfinished] == ["V3-a1"]
    assert not lookup_is_conclusive(unfinished)  # an import is working: it may be ours
    assert lookup_is_conclusive([])
    deleting = job("queued", None, id="V3-d4", job_type="bulk_delete_tickets")
    assert lookup_is_conclusive([JobStatus.model_validate(deleting)])


# ------------------------------------------------------------------ credentials


@responses.activate
def test_users_me_names_the_authenticated_user(clock: FakeClock) -> None:
    client = make_client(clock)
    me = {
        "user": {
            "id": 384920117,
            "url": f"{BASE}/api/v2/users/384920117.json",
            "name": "Integration Account",
            "email": "ops@acme.example",
            "role": "admin",
            "verified": True,
            "active": True,
            "suspended": False,
            "locale": "en-US",
            "time_zone": "Europe/Berlin",
        }
    }
    responses.add(responses.GET, f"{BASE}/api/v2/users/me", json=me, headers=HEADERS_2024)
    assert client.check_credentials() == {"id": 384920117, "role": "admin"}


@responses.activate
def test_users_me_for_the_anonymous_user_is_an_auth_error(clock: FakeClock) -> None:
    # What Zendesk shows a request it did not authenticate: 200, the anonymous user, id null.
    anonymous = {
        "user": {
            "id": None,
            "url": None,
            "name": "Anonymous user",
            "email": "invalid@example.com",
            "role": "end-user",
        }
    }
    responses.add(responses.GET, f"{BASE}/api/v2/users/me", json=anonymous)
    with pytest.raises(AuthError, match="anonymous"):
        make_client(clock).check_credentials()


@responses.activate
def test_401_as_recorded_is_one_auth_error_without_retry(clock: FakeClock) -> None:
    responses.add(
        responses.GET,
        f"{BASE}/api/v2/users/me",
        json={"error": "Couldn't authenticate you"},
        status=401,
    )
    with pytest.raises(AuthError, match="Couldn't authenticate you") as info:
        make_client(clock).check_credentials()
    assert "zd-token-4e2a9c" not in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_403_for_a_missing_scope_shows_zendesks_reason_scrubbed(clock: FakeClock) -> None:
    forbidden = {
        "error": "Forbidden",
        "description": "You do not have access to this page. Please contact the account owner "
        "of this help desk (owner@acme.example) for further help.",
    }
    responses.add(responses.GET, f"{BASE}/api/v2/users/search", json=forbidden, status=403)
    with pytest.raises(AuthError) as info:
        make_client(clock).find_users_by_email("visitor@example.org")
    text = str(info.value)
    assert "Forbidden" in text and "You do not have access to this page" in text
    assert "owner@acme.example" not in text and "visitor@example.org" not in text
    assert "scope" in text


# ------------------------------------------------------------------ rate-limit headers


def test_pacer_reads_the_2023_spelling_of_the_reset() -> None:
    clock = FakeClock(start=5000.0)
    pacer = RateLimitPacer(clock=clock)
    pacer.observe(HEADERS_2023)  # 3 left of 400, resets in 21 s (hyphenated header)
    assert pacer.delay() == pytest.approx(21)


def test_pacer_reads_the_2024_spelling_and_lowercase_headers() -> None:
    clock = FakeClock(start=5000.0)
    pacer = RateLimitPacer(clock=clock)
    low = {k.lower(): v for k, v in HEADERS_2024.items()}
    pacer.observe({**low, "x-rate-limit-remaining": "2", "ratelimit-remaining": "2"})
    assert pacer.delay() == pytest.approx(37)


def test_list_tickets_budget_is_read_and_paced() -> None:
    clock = FakeClock(start=5000.0)
    budget = ListBudget("zendesk-ratelimit-tickets-index", clock=clock)
    budget.observe({"zendesk-ratelimit-tickets-index": "total=100; remaining=99; resets=43"})
    assert budget.take() == 0 and budget.remaining == 98
    budget.observe({"zendesk-ratelimit-tickets-index": "total=100; remaining=2; resets=43"})
    assert budget.take() == pytest.approx(43)  # the reserve is kept: wait for the reset
    clock.now += 43
    assert budget.take() == 0  # a new window


@responses.activate
def test_external_id_lookups_wait_for_the_list_tickets_budget_instead_of_a_429(
    clock: FakeClock,
) -> None:
    client = make_client(clock)
    headers = {
        **HEADERS_2024,
        "zendesk-ratelimit-tickets-index": "total=100; remaining=2; resets=43",
    }
    empty = {"tickets": [], "next_page": None, "previous_page": None, "count": 0}
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json=empty, headers=headers)
    fresh = {**headers, "zendesk-ratelimit-tickets-index": "total=100; remaining=99; resets=60"}
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json=empty, headers=fresh)
    assert client.find_ticket_ids("snapengage:c1") == []
    assert clock.sleeps == []
    assert client.find_ticket_ids("snapengage:c2") == []
    assert clock.sleeps == [pytest.approx(43)]  # paced, no 429 spent
    assert [c.response.status_code for c in responses.calls] == [200, 200]


# ------------------------------------------------------------------ truncated bodies


@responses.activate
def test_a_truncated_job_status_body_is_retried_not_fatal(clock: FakeClock) -> None:
    client = make_client(clock)
    url = f"{BASE}/api/v2/job_statuses/show_many"
    whole = {"job_statuses": [job("completed", [{"index": 0, "id": 9, "account_id": ACCOUNT}])]}
    responses.add(responses.GET, url, body='{"job_statuses": [{"id": "V3-5d4e', status=200)
    responses.add(responses.GET, url, json=whole, headers=HEADERS_2024)
    found = client.job_statuses(["V3-5d4e1f0a9b8c7d6e5f4a3b2c1d0e9f8a"])
    assert next(iter(found.values())).result_items[0].id == 9


@responses.activate
def test_a_body_truncated_every_time_ends_in_retries_exhausted(clock: FakeClock) -> None:
    url = f"{BASE}/api/v2/users/me"
    responses.add(responses.GET, url, body='{"user": {"id": 38', status=200)
    with pytest.raises(RetriesExhausted, match="not JSON"):
        make_client(clock).check_credentials()
    assert len(responses.calls) == 3
