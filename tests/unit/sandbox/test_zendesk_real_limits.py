"""The fake Zendesk where real accounts are strict: comment size in bytes, requesters without
an email, users/me, tickets/show_many, the job_statuses list, and header spellings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.sandbox.server import IN_PROCESS_URL

TIMEOUT = 10


def _session(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)
    if sb.base_url == IN_PROCESS_URL:  # not served: mounted in-process
        session.mount(sb.base_url, sb.adapter)
    return session


@pytest.fixture(scope="module")
def strict() -> Iterator[Sandbox]:
    config = SandboxConfig(
        chats=0, job_seconds=0.05, strict_requester=True, tickets_index_per_minute=3
    )
    with Sandbox(config) as box:
        yield box


def _ticket(external_id: str, body: str, requester: dict[str, Any] | None) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "external_id": external_id,
        "subject": f"Chat {external_id}",
        "status": "solved",
        "created_at": "2030-01-01T10:00:00Z",
        "comments": [{"body": body, "public": False}],
    }
    if requester is not None:
        ticket["requester"] = requester
    return ticket


def _import(sb: Sandbox, tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    http = _session(sb)
    posted = http.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": tickets},
        timeout=TIMEOUT,
    )
    assert posted.status_code == 200, posted.text
    job_id = posted.json()["job_status"]["id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = http.get(
            f"{sb.zendesk_base_url}/api/v2/job_statuses/{job_id}", timeout=TIMEOUT
        ).json()["job_status"]
        if status["status"] == "completed":
            return list(status["results"])
        time.sleep(0.02)
    raise AssertionError("job did not complete")


def test_comment_size_is_limited_in_bytes_not_characters(strict: Sandbox) -> None:
    email = {"name": "Ann", "email": "ann@example.org"}
    cyrillic = "Ж" * 40_000  # 40,000 characters, 80,000 bytes
    ascii_ok = "x" * 60_000
    results = _import(strict, [_ticket("b:1", cyrillic, email), _ticket("b:2", ascii_ok, email)])
    assert results[0] == {
        "index": 0,
        "error": "TicketCreateFailed",
        "details": "Comment: body is too long",
    }
    assert "id" in results[1]


def test_strict_mode_refuses_a_requester_without_email_but_takes_requester_id(
    strict: Sandbox,
) -> None:
    me = _session(strict).get(f"{strict.zendesk_base_url}/api/v2/users/me", timeout=TIMEOUT)
    shared_user = me.json()["user"]["id"]
    named = _ticket("r:1", "hi", {"name": "Ann"})
    by_id = {**_ticket("r:2", "hi", None), "requester_id": shared_user}
    results = _import(strict, [named, by_id])
    assert results[0]["error"] == "TicketCreateFailed"
    assert results[0]["details"] == "Requester: Email cannot be blank"
    assert "id" in results[1]
    shown = _session(strict).get(
        f"{strict.zendesk_base_url}/api/v2/tickets/show_many",
        params={"ids": f"{results[1]['id']},999999"},
        timeout=TIMEOUT,
    )
    body = shown.json()
    assert set(body) >= {"tickets", "next_page", "previous_page", "count"}
    (ticket,) = body["tickets"]  # the unknown id is left out, not an error
    assert ticket["external_id"] == "r:2" and ticket["requester_id"] == shared_user
    # A Ticket object carries no comments (the first one's body is its description) ...
    assert "comments" not in ticket and ticket["description"] == "hi"
    comments = _session(strict).get(
        f"{strict.zendesk_base_url}/api/v2/tickets/{ticket['id']}/comments", timeout=TIMEOUT
    )
    # ... and a comment imported without author_id is written by the authenticated user.
    assert comments.json()["comments"][0]["author_id"] == shared_user


def test_users_me_answers_the_authenticated_user_and_401_otherwise(strict: Sandbox) -> None:
    url = f"{strict.zendesk_base_url}/api/v2/users/me"
    me = _session(strict).get(url, timeout=TIMEOUT).json()["user"]
    assert isinstance(me["id"], int) and me["role"] == "admin"
    assert me["email"] == strict.config.zendesk_email
    refused = requests.get(url, auth=("x/token", "wrong"), timeout=TIMEOUT)
    assert refused.status_code == 401
    assert refused.json() == {"error": "Couldn't authenticate you"}


def test_job_statuses_list_shows_unfinished_jobs_first(strict: Sandbox) -> None:
    _import(strict, [_ticket("j:1", "hi", {"name": "A", "email": "a@example.org"})])
    http = _session(strict)
    posted = http.post(
        f"{strict.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": [_ticket("j:2", "hi", {"name": "B", "email": "b@example.org"})]},
        timeout=TIMEOUT,
    ).json()["job_status"]
    listed = http.get(f"{strict.zendesk_base_url}/api/v2/job_statuses", timeout=TIMEOUT).json()
    first = listed["job_statuses"][0]
    assert first["id"] == posted["id"] and first["status"] in ("queued", "working")
    assert first["job_type"] == "bulk_import_tickets"


def test_list_tickets_has_its_own_budget_header_and_429(strict: Sandbox) -> None:
    http = _session(strict)
    url = f"{strict.zendesk_base_url}/api/v2/tickets"
    seen = []
    for _ in range(5):
        response = http.get(url, params={"external_id": "none"}, timeout=TIMEOUT)
        seen.append(response.status_code)
        if response.status_code == 200:
            budget = response.headers["zendesk-ratelimit-tickets-index"]
            assert budget.startswith("total=3; remaining=")
    assert 429 in seen  # a fourth lookup in the window is refused
    assert response.headers["Retry-After"]
    # Other endpoints keep the account budget.
    assert http.get(f"{strict.zendesk_base_url}/api/v2/users/me", timeout=TIMEOUT).ok


def test_2023_header_spelling() -> None:
    with Sandbox(SandboxConfig(chats=0, rate_header_style="2023")) as box:
        response = _session(box).get(f"{box.zendesk_base_url}/api/v2/users/me", timeout=TIMEOUT)
    headers = response.headers
    assert headers["X-Rate-Limit-Remaining"] and headers["rate-limit-reset"]
    assert "ratelimit-reset" not in headers


def test_a_queued_job_has_no_progress_yet_as_recorded() -> None:
    """Recorded traffic: a queued job shows its ``total`` but ``progress`` and ``results``
    null; a client computing progress/total must cope with that before the job runs."""
    box = Sandbox(SandboxConfig(chats=0, job_seconds=3600.0), serve=False)
    http = _session(box)
    ticket = _ticket("q1", "hello", {"email": "q1@example.com"})
    posted = http.post(
        f"{box.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": [ticket, {**ticket, "external_id": "q2"}]},
        timeout=TIMEOUT,
    ).json()["job_status"]
    shown = http.get(posted["url"], timeout=TIMEOUT).json()["job_status"]
    for job in (posted, shown):
        assert job["status"] == "queued" and job["total"] == 2
        assert job["progress"] is None and job["results"] is None


def test_an_oauth_token_reaches_only_what_its_scope_grants() -> None:
    """Spec: a token lacking the scope an endpoint needs gets a Forbidden (403); user search
    and deletion need ``users:*``. ``read``/``write`` grant every resource."""
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    http = requests.Session()
    http.mount(box.base_url, box.adapter)
    cfg, api = box.config, f"{box.zendesk_base_url}/api/v2"

    def bearer(scope: str) -> dict[str, str]:
        grant = {"grant_type": "client_credentials", "scope": scope}
        client = {"client_id": cfg.oauth_client_id, "client_secret": cfg.oauth_client_secret}
        answer = http.post(f"{box.zendesk_base_url}/oauth/tokens", json={**grant, **client})
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    tickets_read, users_read, everything = (
        bearer(s) for s in ("tickets:read", "users:read", "read write")
    )
    body = {"ticket": _ticket("sc1", "hello", {"email": "sc1@example.com"})}
    imports, search = f"{api}/imports/tickets", f"{api}/users/search?query=sc1@example.com"
    assert http.get(f"{api}/tickets", headers=tickets_read).status_code == 200
    refused = http.post(imports, json=body, headers=tickets_read)
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    assert http.get(search, headers=tickets_read).status_code == 403
    assert http.get(search, headers=users_read).status_code == 200
    assert http.post(imports, json=body, headers=everything).status_code == 201
    store, clock = box.app.store, box.app.store.clock
    store.clock = lambda: clock() + cfg.search_index_lag_seconds  # users/search has indexed it
    user_id = http.get(search, headers=everything).json()["users"][0]["id"]
    assert http.delete(f"{api}/users/{user_id}", headers=users_read).status_code == 403
    assert http.delete(f"{api}/users/{user_id}", headers=everything).status_code == 200


def test_an_import_naming_a_user_zendesk_does_not_have_is_refused() -> None:
    """A ``requester_id`` or a comment's ``author_id`` must be a user of the account (a
    mistyped ``zendesk.anonymous_requester_id`` fails every import on a real account)."""
    box = Sandbox(SandboxConfig(chats=0, job_seconds=0.0), serve=False)
    http = _session(box)
    known = box.app.store.add_user(None, name="Anonymous visitor")
    ticket = _ticket("u1", "hello", None)
    by_known = {**ticket, "requester_id": known}
    by_nobody = {**ticket, "external_id": "u2", "requester_id": 424242}
    authored = [{"body": "hi", "author_id": 525252}]
    by_ghost = {**by_known, "external_id": "u3", "comments": authored}
    results = _import(box, [by_known, by_nobody, by_ghost])
    assert "id" in results[0] and "error" not in results[0]
    assert [r.get("error") for r in results[1:]] == ["TicketCreateFailed"] * 2
    single = http.post(f"{box.zendesk_base_url}/api/v2/imports/tickets", json={"ticket": by_nobody})
    assert single.status_code == 422


def test_a_job_status_is_gone_an_hour_after_the_job_was_created() -> None:
    """Zendesk's pages disagree (a day, or an hour): the sandbox keeps the shorter, so a
    client that polls late learns to recover by lookup."""
    box = Sandbox(SandboxConfig(chats=0, job_seconds=1.0), serve=False)
    now = [1_790_000_000.0]  # 2026-09: API tokens still work
    box.app.store.clock = lambda: now[0]
    http = _session(box)
    ticket = _ticket("old1", "hello", {"email": "old1@example.com"})
    posted = http.post(
        f"{box.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": [ticket]},
        timeout=TIMEOUT,
    ).json()["job_status"]
    now[0] += 3599
    assert http.get(posted["url"], timeout=TIMEOUT).json()["job_status"]["status"] == "completed"
    now[0] += 2
    assert http.get(posted["url"], timeout=TIMEOUT).status_code == 404


def test_search_sees_a_change_only_once_it_is_indexed() -> None:
    """ "It can take up to a few minutes for new tickets ... to be indexed for search": search,
    its count and its export see each creation, update and deletion only after the index lag,
    on the account's clock (a ticket is found in its previous state until then)."""
    box = Sandbox(SandboxConfig(chats=0, search_index_lag_seconds=120), serve=False)
    assert SandboxConfig().search_index_lag_seconds > 0  # the default lags too
    now = [1_790_000_000.0]
    box.app.store.clock = lambda: now[0]
    http, api = _session(box), f"{box.zendesk_base_url}/api/v2"

    def found(query: str) -> tuple[int, list[int], list[int]]:
        count = http.get(f"{api}/search/count", params={"query": query}).json()["count"]
        hits = http.get(f"{api}/search", params={"query": query}).json()["results"]
        params = {"query": query, "filter[type]": "ticket"}
        exported = http.get(f"{api}/search/export", params=params).json()["results"]
        return count, [t["id"] for t in hits], [t["id"] for t in exported]

    ticket = {**_ticket("lag1", "hello", {"email": "lag@example.com"}), "status": "open"}
    made = http.post(f"{api}/imports/tickets", json={"ticket": ticket}).json()["ticket"]["id"]
    assert http.get(f"{api}/tickets/{made}").status_code == 200  # readable by id at once
    now[0] += 119
    assert found("tags:lag") == found("external_id:lag1") == (0, [], [])
    now[0] += 1
    assert found("external_id:lag1") == (1, [made], [made])
    http.put(f"{api}/tickets/{made}", json={"ticket": {"tags": ["lag"]}})
    now[0] += 60
    assert found("tags:lag") == (0, [], []) and found("external_id:lag1")[0] == 1
    now[0] += 60
    assert found("tags:lag") == (1, [made], [made])
    assert http.delete(f"{api}/tickets/{made}").status_code == 204
    assert found("tags:lag") == (1, [made], [made])  # the index still holds it
    now[0] += 120
    assert found("tags:lag") == (0, [], [])


def test_api_tokens_are_refused_from_2027_04_30_and_oauth_goes_on() -> None:
    """Zendesk's OAuth migration: on 2027-04-30 "all API tokens permanently deactivated: all
    API calls using API tokens will fail"; the sandbox answers them as any refused credentials
    (a 401 with Zendesk's body). OAuth keeps working."""
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    cutoff = datetime(2027, 4, 30, tzinfo=UTC).timestamp()
    now = [cutoff - 1]
    box.app.store.clock = lambda: now[0]
    http, cfg = _session(box), box.config
    me = f"{box.zendesk_base_url}/api/v2/users/me"
    assert http.get(me).status_code == 200
    now[0] = cutoff
    refused = http.get(me)
    assert (refused.status_code, refused.json()) == (401, {"error": "Couldn't authenticate you"})
    client = {"client_id": cfg.oauth_client_id, "client_secret": cfg.oauth_client_secret}
    grant = http.post(
        f"{box.zendesk_base_url}/oauth/tokens", json={"grant_type": "client_credentials", **client}
    )
    oauth = requests.Session()
    oauth.mount(box.base_url, box.adapter)
    oauth.headers["Authorization"] = f"Bearer {grant.json()['access_token']}"
    assert oauth.get(me).status_code == 200
