"""The fake Zendesk import API: auth, jobs, lookups, deletion and the in-flight job cap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from snapzen.sandbox import Sandbox, SandboxConfig

TIMEOUT = 10
JOB_SECONDS = 0.3


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=0, job_seconds=JOB_SECONDS)) as box:
        yield box


@pytest.fixture()
def http(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)
    return session


def _ticket(external_id: str, **extra: Any) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "external_id": external_id,
        "subject": f"Chat {external_id}",
        "requester": {"name": "Zoë 🦄", "email": "zoe@example.com"},
        "status": "solved",
        "created_at": "2030-01-01T10:00:00Z",
        "solved_at": "2030-01-01T10:05:00Z",
        "tags": ["snapengage", "expires_2032_01"],
        "comments": [{"body": "[10:00:00] Visitor: hi", "public": False}],
    }
    ticket.update(extra)
    return ticket


def _wait_job(http: requests.Session, sb: Sandbox, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = http.get(
            f"{sb.zendesk_base_url}/api/v2/job_statuses/{job_id}.json", timeout=TIMEOUT
        ).json()["job_status"]
        if status["status"] == "completed":
            return dict(status)
        time.sleep(0.05)
    raise AssertionError("job did not complete")


def _create_many(
    http: requests.Session, sb: Sandbox, tickets: list[dict[str, Any]], query: str = ""
) -> dict[str, Any]:
    response = http.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many{query}",
        json={"tickets": tickets},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return _wait_job(http, sb, response.json()["job_status"]["id"])


def test_basic_auth_and_failures(sb: Sandbox, http: requests.Session) -> None:
    url = f"{sb.zendesk_base_url}/api/v2/tickets"
    assert http.get(url, timeout=TIMEOUT).status_code == 200
    for auth in [
        None,
        (f"{sb.config.zendesk_email}/token", "wrong"),
        (sb.config.zendesk_email, sb.config.zendesk_token),
    ]:
        response = requests.get(url, auth=auth, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.json() == {"error": "Couldn't authenticate you"}
    bearer = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT)
    assert bearer.status_code == 401


def test_oauth_client_credentials(sb: Sandbox) -> None:
    url = f"{sb.zendesk_base_url}/oauth/tokens"
    cfg = sb.config
    good = {
        "grant_type": "client_credentials",
        "client_id": cfg.oauth_client_id,
        "client_secret": cfg.oauth_client_secret,
        "scope": "tickets:read tickets:write",
    }
    as_json = requests.post(url, json=good, timeout=TIMEOUT)
    as_form = requests.post(url, data=good, timeout=TIMEOUT)
    for response in (as_json, as_form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 1800
        assert body["scope"] == "tickets:read tickets:write"
        check = requests.get(
            f"{sb.zendesk_base_url}/api/v2/tickets",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        assert check.status_code == 200
    bad = requests.post(url, json={**good, "client_secret": "x"}, timeout=TIMEOUT)
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}


def test_expired_oauth_token_is_refused() -> None:
    with Sandbox(SandboxConfig(chats=0, oauth_token_ttl_seconds=0)) as sb:
        cfg = sb.config
        token = requests.post(
            f"{sb.zendesk_base_url}/oauth/tokens",
            timeout=TIMEOUT,
            json={
                "grant_type": "client_credentials",
                "client_id": cfg.oauth_client_id,
                "client_secret": cfg.oauth_client_secret,
            },
        ).json()["access_token"]
        response = requests.get(
            f"{sb.zendesk_base_url}/api/v2/tickets",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401


def test_single_import(sb: Sandbox, http: requests.Session) -> None:
    url = f"{sb.zendesk_base_url}/api/v2/imports/tickets"
    response = http.post(url, json={"ticket": _ticket("single-1")}, timeout=TIMEOUT)
    assert response.status_code == 201
    ticket = response.json()["ticket"]
    assert isinstance(ticket["id"], int) and ticket["external_id"] == "single-1"
    assert ticket["solved_at"] == "2030-01-01T10:05:00Z" and ticket["status"] == "solved"
    invalid = http.post(url, json={"ticket": _ticket("single-2", comments=[])}, timeout=TIMEOUT)
    assert invalid.status_code == 422 and invalid.json()["error"] == "RecordInvalid"


def test_job_lifecycle_with_item_errors(sb: Sandbox, http: requests.Session) -> None:
    tickets = [
        _ticket("job-ok-0"),
        _ticket("job-bad-email", requester={"name": "A", "email": "a@b"}),
        _ticket("job-name-only", requester={"name": "مرحبا"}),
        {k: v for k, v in _ticket("job-no-comment").items() if k != "comments"},
        _ticket("job-ok-4"),
    ]
    response = http.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": tickets},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    job = response.json()["job_status"]
    assert job["status"] == "queued" and job["total"] == 5 and job["progress"] is None
    assert job["results"] is None and job["url"].startswith(sb.zendesk_base_url)
    seen = {job["status"]}
    deadline = time.monotonic() + 10
    while job["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
        job = http.get(job["url"], timeout=TIMEOUT).json()["job_status"]
        seen.add(job["status"])
    assert seen == {"queued", "working", "completed"}
    results = job["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert results[1] == {
        "index": 1,
        "error": "TicketCreateFailed",
        "details": "Requester: Email is invalid",
    }
    assert results[3]["details"] == "Description: cannot be blank"
    ids = [results[i]["id"] for i in (0, 2, 4)]
    assert ids == sorted(ids) and ids[1] == ids[0] + 1 and ids[2] == ids[1] + 1
    shown = http.get(f"{sb.zendesk_base_url}/api/v2/tickets/{ids[1]}", timeout=TIMEOUT).json()
    assert shown["ticket"]["requester"] == {"name": "مرحبا"}
    assert shown["ticket"]["tags"] == ["snapengage", "expires_2032_01"]


def test_show_many_omits_unknown(sb: Sandbox, http: requests.Session) -> None:
    first = _create_many(http, sb, [_ticket("sm-1")])
    second = _create_many(http, sb, [_ticket("sm-2")])
    url = (
        f"{sb.zendesk_base_url}/api/v2/job_statuses/show_many?ids={first['id']},nope,{second['id']}"
    )
    statuses = http.get(url, timeout=TIMEOUT).json()["job_statuses"]
    assert [s["id"] for s in statuses] == [first["id"], second["id"]]
    missing = http.get(f"{sb.zendesk_base_url}/api/v2/job_statuses/nope", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["error"] == "RecordNotFound"


def test_external_id_lookup_excludes_archived(sb: Sandbox, http: requests.Session) -> None:
    _create_many(
        http,
        sb,
        [_ticket("ext-solved"), _ticket("ext-closed", status="closed")],
        "?archive_immediately=true",
    )
    base = f"{sb.zendesk_base_url}/api/v2/tickets"
    solved = http.get(base, params={"external_id": "ext-solved"}, timeout=TIMEOUT).json()
    assert solved["count"] == 1 and solved["next_page"] is None
    closed = http.get(base, params={"external_id": "ext-closed"}, timeout=TIMEOUT).json()
    assert closed == {"tickets": [], "next_page": None, "previous_page": None, "count": 0}
    archived = [t for t in sb.tickets() if t["external_id"] == "ext-closed"]
    assert len(archived) == 1 and archived[0]["archived"]
    # Archived tickets stay reachable by id, as on the real service.
    assert http.get(f"{base}/{archived[0]['id']}", timeout=TIMEOUT).status_code == 200


def test_batch_over_100_is_refused(sb: Sandbox, http: requests.Session) -> None:
    response = http.post(
        f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many",
        json={"tickets": [_ticket(f"big-{i}") for i in range(101)]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400 and "100" in response.json()["description"]


def test_soft_delete_destroy_many_and_purge(sb: Sandbox, http: requests.Session) -> None:
    job = _create_many(http, sb, [_ticket(f"del-{i}") for i in range(3)])
    a, b, c = (r["id"] for r in job["results"])
    base = f"{sb.zendesk_base_url}/api/v2"
    assert http.delete(f"{base}/tickets/{a}", timeout=TIMEOUT).status_code == 204
    gone = http.get(f"{base}/tickets/{a}", timeout=TIMEOUT)
    assert gone.status_code == 404
    assert gone.json() == {"error": "RecordNotFound", "description": "Not found"}
    assert http.delete(f"{base}/tickets/{a}", timeout=TIMEOUT).status_code == 404
    lookup = http.get(f"{base}/tickets", params={"external_id": "del-0"}, timeout=TIMEOUT)
    assert lookup.json()["count"] == 0

    response = http.delete(f"{base}/tickets/destroy_many?ids={a},{b},{c},999999", timeout=TIMEOUT)
    assert response.status_code == 200
    done = _wait_job(http, sb, response.json()["job_status"]["id"])
    by_id = {r["id"]: r for r in done["results"]}
    assert by_id[b]["success"] and by_id[c]["status"] == "Deleted"
    assert by_id[a]["status"] == "AlreadyDeleted" and not by_id[999999]["success"]
    listed = {
        t["id"]
        for t in http.get(f"{base}/deleted_tickets", timeout=TIMEOUT).json()["deleted_tickets"]
    }
    assert {a, b, c} <= listed

    purge = http.delete(f"{base}/deleted_tickets/destroy_many?ids={a},{b}", timeout=TIMEOUT)
    done = _wait_job(http, sb, purge.json()["job_status"]["id"])
    assert done["results"] == {"success": True} and done["total"] is None
    listed = {
        t["id"]
        for t in http.get(f"{base}/deleted_tickets", timeout=TIMEOUT).json()["deleted_tickets"]
    }
    assert a not in listed and b not in listed and c in listed
    assert sb.state()["purged_tickets_count"] >= 2
    assert http.delete(f"{base}/tickets/destroy_many?ids=x", timeout=TIMEOUT).status_code == 400


def test_too_many_jobs() -> None:
    with Sandbox(SandboxConfig(chats=0, job_seconds=3.0, max_jobs_in_flight=2)) as sb:
        http = requests.Session()
        http.auth = (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)
        url = f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many"
        first = http.post(url, json={"tickets": [_ticket("tmj-1")]}, timeout=TIMEOUT)
        assert first.headers["zendesk-ratelimit-inflight-jobs"] == (
            "total=2; remaining=1; resets=60"
        )
        http.post(url, json={"tickets": [_ticket("tmj-2")]}, timeout=TIMEOUT)
        refused = http.post(url, json={"tickets": [_ticket("tmj-3")]}, timeout=TIMEOUT)
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"] == "TooManyJobs" and "Try again later" in body["description"]
        assert len(body["current_job_ids"]) == 2
        assert 1 <= int(refused.headers["Retry-After"]) <= 3
        assert "remaining=0" in refused.headers["zendesk-ratelimit-inflight-jobs"]
        state = sb.state()
        assert state["too_many_jobs_429"] == 1 and state["responses_429"] == 1
        assert state["jobs"]["in_flight"] == 2


def _later(sb: Sandbox) -> None:
    """Move the Zendesk clock past search's index lag: users made so far are searchable."""
    store, clock = sb.app.store, sb.app.store.clock
    store.clock = lambda: clock() + sb.config.search_index_lag_seconds


def test_users_search_delete_and_purge(sb: Sandbox, http: requests.Session) -> None:
    _create_many(
        http, sb, [_ticket("usr-1", requester={"name": "Uma", "email": "Uma@Example.com"})]
    )
    agent_id = sb.app.store.add_user("agent@example.com", name="Agent", role="agent")
    _later(sb)
    base = f"{sb.zendesk_base_url}/api/v2"
    found = http.get(
        f"{base}/users/search.json", params={"query": "uma@example.COM"}, timeout=TIMEOUT
    ).json()
    assert found["count"] == 1 and found["next_page"] is None
    user = found["users"][0]
    assert user["email"] == "Uma@Example.com" and user["role"] == "end-user"
    agent = http.get(f"{base}/users/search", params={"query": "agent@example.com"}, timeout=10)
    assert [(u["id"], u["role"]) for u in agent.json()["users"]] == [(agent_id, "agent")]
    assert http.get(f"{base}/users/search", timeout=TIMEOUT).status_code == 400

    # Permanent deletion needs the soft delete first.
    assert http.delete(f"{base}/deleted_users/{user['id']}", timeout=TIMEOUT).status_code == 404
    soft = http.delete(f"{base}/users/{user['id']}", timeout=TIMEOUT)
    assert soft.status_code == 200 and soft.json()["user"]["active"] is False
    assert http.delete(f"{base}/users/{user['id']}", timeout=TIMEOUT).status_code == 404
    gone = http.get(f"{base}/users/search", params={"query": "uma@example.com"}, timeout=10)
    assert gone.json()["users"] == []
    purge = http.delete(f"{base}/deleted_users/{user['id']}.json", timeout=TIMEOUT)
    assert purge.status_code == 200
    assert purge.json()["deleted_user"]["name"] == "Permanently Deleted User"
    assert http.delete(f"{base}/deleted_users/{user['id']}", timeout=TIMEOUT).status_code == 404
    assert {"id": user["id"], "purged": True} in sb.app.store.inspect_users()
    assert http.delete(f"{base}/users/424242", timeout=TIMEOUT).status_code == 404
    # A new import with that address creates a new profile, as after a real deletion.
    _create_many(
        http, sb, [_ticket("usr-2", requester={"name": "Uma", "email": "uma@example.com"})]
    )
    _later(sb)
    again = http.get(f"{base}/users/search", params={"query": "uma@example.com"}, timeout=10)
    assert [u["id"] for u in again.json()["users"]] != [user["id"]]


def test_user_endpoints_need_auth(sb: Sandbox) -> None:
    base = f"{sb.zendesk_base_url}/api/v2"
    assert requests.get(f"{base}/users/search?query=x", timeout=TIMEOUT).status_code == 401
    assert requests.delete(f"{base}/users/1", timeout=TIMEOUT).status_code == 401
    assert requests.delete(f"{base}/deleted_users/1", timeout=TIMEOUT).status_code == 401
