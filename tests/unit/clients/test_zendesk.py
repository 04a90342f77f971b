"""snapzen.clients.zendesk: import/job/lookup/delete endpoints, auth modes, rate-limit pacing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import responses
from pydantic import SecretStr
from responses import matchers
from structlog.testing import capture_logs

from snapzen.clients.http import HttpClient
from snapzen.clients.pacing import RateLimitPacer, parse_budget_header
from snapzen.clients.zendesk import ZendeskClient
from snapzen.policy.models import ABSENT_POLLS, ImportComment, ImportRequester, ImportTicket
from snapzen.support import log
from snapzen.support.errors import AmbiguousWriteError, AuthError, ConfigError
from snapzen.support.settings import HttpSettings, ZendeskSettings

BASE = "https://acme.zendesk.com"
EMAIL = "ops@acme.example"
API_TOKEN = "zd-api-token-6a1f0c9e2b7d4e8f"
CLIENT_SECRET = "zd-client-secret-93b1e77a0c"
ACCESS_1 = "access-token-one-7f3e2d1c"
ACCESS_2 = "access-token-two-8e4f3a2b"
IMPORT = f"{BASE}/api/v2/imports/tickets/create_many"
SHOW_MANY = f"{BASE}/api/v2/job_statuses/show_many"
TOKENS = f"{BASE}/oauth/tokens"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    """Records sleeps and moves the fake clock forward by them."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.clock.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    return Sleeps(clock)


def make_client(clock: FakeClock, sleeps: Sleeps, **overrides: Any) -> ZendeskClient:
    fields: dict[str, Any] = {
        "base_url": BASE,
        "email": EMAIL,
        "api_token": SecretStr(API_TOKEN),
        "job_poll_seconds": 2.0,
    }
    # model_copy skips validation: the client supports settings that the config refuses
    # today (archive_immediately), so its own behaviour stays tested.
    settings = ZendeskSettings(**fields).model_copy(update=overrides)
    http = HttpClient(HttpSettings(max_attempts=3), service="zendesk", sleep=sleeps)
    return ZendeskClient(settings, http, clock=clock, sleep=sleeps)


def oauth_client(clock: FakeClock, sleeps: Sleeps) -> ZendeskClient:
    return make_client(
        clock,
        sleeps,
        email="",
        api_token=None,
        oauth_client_id="snapzen",
        oauth_client_secret=SecretStr(CLIENT_SECRET),
    )


def ticket(n: int) -> ImportTicket:
    return ImportTicket(
        external_id=f"snapengage:{n}",
        subject=f"Chat {n}",
        requester=ImportRequester(name="Visitor"),
        created_at="2026-01-01T10:00:00Z",
        updated_at="2026-01-01T10:05:00Z",
        solved_at="2026-01-01T10:05:00Z",
        status="solved",
        comments=[ImportComment(value="[10:00:00] Visitor: hi", created_at="2026-01-01T10:00:00Z")],
        tags=["snapengage"],
    )


def job(job_id: str, status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "status": status, **extra}


def body_of(call: Any) -> Any:
    return json.loads(call.request.body)


# ---------------------------------------------------------------- import


@responses.activate
def test_submit_import_body_shape(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.POST, IMPORT, json={"job_status": job("j1")})
    status = make_client(clock, sleeps).submit_import([ticket(1), ticket(2)])
    assert status.id == "j1"
    assert status.status == "queued"
    sent = responses.calls[0].request
    assert sent.url == IMPORT  # no archive_immediately by default
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    body = body_of(responses.calls[0])
    assert list(body) == ["tickets"]
    assert [t["external_id"] for t in body["tickets"]] == ["snapengage:1", "snapengage:2"]
    assert body["tickets"][0] == ticket(1).model_dump(exclude_none=True)
    assert "email" not in body["tickets"][0]["requester"]  # exclude_none


@responses.activate
def test_submit_import_archive_immediately(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(
        responses.POST,
        IMPORT,
        json={"job_status": job("j1")},
        match=[matchers.query_param_matcher({"archive_immediately": "true"})],
    )
    make_client(clock, sleeps, archive_immediately=True).submit_import([ticket(1)])
    assert len(responses.calls) == 1


def test_submit_import_refuses_oversized_and_empty_batches(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    client = make_client(clock, sleeps)
    with pytest.raises(ValueError, match="at most 100"):
        client.submit_import([ticket(i) for i in range(101)])
    with pytest.raises(ValueError, match="at most 10"):
        make_client(clock, sleeps, batch_size=10).submit_import([ticket(i) for i in range(11)])
    with pytest.raises(ValueError, match="nothing"):
        client.submit_import([])


@pytest.mark.parametrize("answer", [{}, {"job_status": {}}, {"job_status": {"status": "queued"}}])
@responses.activate
def test_submit_import_without_job_id_is_ambiguous(
    clock: FakeClock, sleeps: Sleeps, answer: dict[str, Any]
) -> None:
    responses.add(responses.POST, IMPORT, json=answer)
    with pytest.raises(AmbiguousWriteError, match="create_many"):
        make_client(clock, sleeps).submit_import([ticket(1)])


@responses.activate
def test_submit_import_500_is_ambiguous_and_not_retried(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.POST, IMPORT, status=500)
    with pytest.raises(AmbiguousWriteError):
        make_client(clock, sleeps).submit_import([ticket(1)])
    assert len(responses.calls) == 1


@responses.activate
def test_submit_import_too_many_jobs_is_retried(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(
        responses.POST,
        IMPORT,
        status=429,
        json={"error": "TooManyJobs"},
        headers={
            "Retry-After": "10",
            "zendesk-ratelimit-inflight-jobs": "total=30; remaining=0; resets=10",
        },
    )
    responses.add(
        responses.POST,
        IMPORT,
        json={"job_status": job("j9")},
        headers={"zendesk-ratelimit-inflight-jobs": "total=30; remaining=29; resets=60"},
    )
    client = make_client(clock, sleeps)
    assert client.submit_import([ticket(1)]).id == "j9"
    assert sleeps == [10]


# ---------------------------------------------------------------- jobs


@responses.activate
def test_job_statuses_chunks_show_many_by_100(clock: FakeClock, sleeps: Sleeps) -> None:
    ids = [f"j{i}" for i in range(250)]
    for chunk in (ids[:100], ids[100:200], ids[200:]):
        responses.add(
            responses.GET,
            SHOW_MANY,
            json={"job_statuses": [job(j, "completed") for j in chunk if j != "j7"]},
            match=[matchers.query_param_matcher({"ids": ",".join(chunk)})],
        )
    found = make_client(clock, sleeps).job_statuses(ids)
    assert len(responses.calls) == 3
    assert len(found) == 249
    assert "j7" not in found  # Zendesk forgot it: absent, not an error
    assert found["j249"].finished


@responses.activate
def test_wait_for_jobs_polls_until_completed(clock: FakeClock, sleeps: Sleeps) -> None:
    results = [{"index": 0, "id": 501}, {"index": 1, "error": "RecordInvalid", "details": "x"}]
    responses.add(responses.GET, SHOW_MANY, json={"job_statuses": [job("a", "queued"), job("b")]})
    responses.add(
        responses.GET,
        SHOW_MANY,
        json={"job_statuses": [job("a", "completed", results=results), job("b", "working")]},
    )
    responses.add(
        responses.GET,
        SHOW_MANY,
        json={"job_statuses": [job("b", "failed")]},
        match=[matchers.query_param_matcher({"ids": "b"})],  # only the unfinished one
    )
    done = make_client(clock, sleeps).wait_for_jobs(["a", "b"])
    assert {k: v.status for k, v in done.items()} == {"a": "completed", "b": "failed"}
    assert [(r.index, r.id, r.error) for r in done["a"].result_items] == [
        (0, 501, None),
        (1, None, "RecordInvalid"),
    ]
    assert sleeps == [2.0, 2.0]
    polled = [c.request.params["ids"] for c in responses.calls]  # type: ignore[attr-defined]
    assert polled == ["a,b", "a,b", "b"]  # finished jobs are not polled again


@responses.activate
def test_wait_for_jobs_timeout_returns_what_it_has(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.GET, SHOW_MANY, json={"job_statuses": [job("a", "working")]})
    done = make_client(clock, sleeps).wait_for_jobs(["a", "gone"], timeout=5)
    assert {k: v.status for k, v in done.items()} == {"a": "working"}
    assert sum(sleeps) <= 5
    assert len(responses.calls) == 3  # t=0, 2, 4; t=6 would pass the deadline


# ---------------------------------------------------------------- lookup and delete


@responses.activate
def test_find_ticket_ids_by_external_id(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(
        responses.GET,
        f"{BASE}/api/v2/tickets",
        json={
            "tickets": [{"id": 11, "external_id": "snapengage:42"}, {"id": 12}],
            "next_page": None,
        },
        match=[matchers.query_param_matcher({"external_id": "snapengage:42"})],
    )
    assert make_client(clock, sleeps).find_ticket_ids("snapengage:42") == [11, 12]


@responses.activate
def test_find_ticket_ids_none_found(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": [], "count": 0})
    assert make_client(clock, sleeps).find_ticket_ids("snapengage:1") == []


@responses.activate
def test_destroy_and_purge_send_ids(clock: FakeClock, sleeps: Sleeps) -> None:
    for path, job_id in (("tickets", "d1"), ("deleted_tickets", "p1")):
        responses.add(
            responses.DELETE,
            f"{BASE}/api/v2/{path}/destroy_many",
            json={"job_status": job(job_id)},
            match=[matchers.query_param_matcher({"ids": "1,2,3"})],
        )
    client = make_client(clock, sleeps)
    assert client.destroy_tickets([1, 2, 3]).id == "d1"
    assert client.purge_deleted_tickets([1, 2, 3]).id == "p1"
    with pytest.raises(ValueError):
        client.destroy_tickets(list(range(101)))


# ---------------------------------------------------------------- auth


@responses.activate
def test_api_token_basic_auth_header(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    make_client(clock, sleeps).find_ticket_ids("snapengage:1")
    expected = base64.b64encode(f"{EMAIL}/token:{API_TOKEN}".encode()).decode()
    assert responses.calls[0].request.headers["Authorization"] == f"Basic {expected}"


def test_api_token_mode_warns_once_per_process(
    clock: FakeClock, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log, "_once_seen", set())
    with capture_logs() as logs:
        make_client(clock, sleeps)
        make_client(clock, sleeps)
    warnings = [e for e in logs if e["event"] == "zendesk.api_token_deprecated"]
    assert len(warnings) == 1
    assert "2027-04-30" in warnings[0]["message"]
    assert API_TOKEN not in json.dumps(logs)


@responses.activate
def test_static_bearer_token(clock: FakeClock, sleeps: Sleeps) -> None:
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = make_client(clock, sleeps, oauth_access_token=SecretStr(ACCESS_1))
    client.find_ticket_ids("snapengage:1")
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS_1}"


def add_token(access_token: str, expires_in: int | None = 1800) -> None:
    body: dict[str, Any] = {"access_token": access_token, "token_type": "bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    responses.add(
        responses.POST,
        TOKENS,
        json=body,
        match=[
            matchers.json_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": "snapzen",
                    "client_secret": CLIENT_SECRET,
                    "scope": "tickets:read tickets:write users:read users:write",
                }
            )
        ],
    )


def bearer_calls() -> list[str]:
    return [c.request.headers["Authorization"] for c in responses.calls if c.request.url != TOKENS]


def token_calls() -> int:
    return sum(1 for c in responses.calls if c.request.url == TOKENS)


@responses.activate
def test_client_credentials_token_fetched_once_and_reused(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = oauth_client(clock, sleeps)
    for _ in range(3):
        client.find_ticket_ids("snapengage:1")
        clock.now += 60
    assert token_calls() == 1
    assert bearer_calls() == [f"Bearer {ACCESS_1}"] * 3


@responses.activate
def test_client_credentials_renewed_before_expiry(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1, expires_in=1800)
    add_token(ACCESS_2, expires_in=1800)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = oauth_client(clock, sleeps)
    client.find_ticket_ids("snapengage:1")
    clock.now += 1439  # just under 80 % of 1800 s
    client.find_ticket_ids("snapengage:1")
    clock.now += 2  # past 80 %: renew although the token has ~6 minutes left
    client.find_ticket_ids("snapengage:1")
    assert token_calls() == 2
    assert bearer_calls() == [f"Bearer {ACCESS_1}"] * 2 + [f"Bearer {ACCESS_2}"]


@responses.activate
def test_short_lived_token_renewed_at_least_60s_before(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1, expires_in=100)  # 80 % = 80 s, but 60 s margin → renew at 40 s
    add_token(ACCESS_2, expires_in=100)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = oauth_client(clock, sleeps)
    client.find_ticket_ids("snapengage:1")
    clock.now += 41
    client.find_ticket_ids("snapengage:1")
    assert token_calls() == 2


@responses.activate
def test_token_living_under_a_minute_is_renewed_for_every_request_even_at_clock_zero(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    clock.now = 0.0  # a monotonic clock may start anywhere: renewal due "at 0" is still due
    add_token(ACCESS_1, expires_in=30)
    add_token(ACCESS_2, expires_in=30)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = oauth_client(clock, sleeps)
    client.find_ticket_ids("snapengage:1")
    client.find_ticket_ids("snapengage:1")
    assert token_calls() == 2
    assert bearer_calls() == [f"Bearer {ACCESS_1}", f"Bearer {ACCESS_2}"]


@responses.activate
def test_client_credentials_renewed_once_on_401(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1)
    add_token(ACCESS_2)
    responses.add(responses.POST, IMPORT, status=401, body="Couldn't authenticate you")
    responses.add(responses.POST, IMPORT, json={"job_status": job("j1")})
    client = oauth_client(clock, sleeps)
    assert client.submit_import([ticket(1)]).id == "j1"
    assert token_calls() == 2
    assert bearer_calls() == [f"Bearer {ACCESS_1}", f"Bearer {ACCESS_2}"]


@responses.activate
def test_second_401_after_renewal_is_auth_error(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1)
    add_token(ACCESS_2)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", status=401)
    with pytest.raises(AuthError, match="zendesk"):
        oauth_client(clock, sleeps).find_ticket_ids("snapengage:1")
    assert token_calls() == 2
    assert len(bearer_calls()) == 2


@responses.activate
def test_403_is_not_renewed(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", status=403)
    with pytest.raises(AuthError):
        oauth_client(clock, sleeps).find_ticket_ids("snapengage:1")
    assert token_calls() == 1


@pytest.mark.parametrize("status", [400, 401, 500])
@responses.activate
def test_token_endpoint_failure_is_auth_error(
    clock: FakeClock, sleeps: Sleeps, status: int
) -> None:
    responses.add(responses.POST, TOKENS, status=status, json={"error": "invalid_client"})
    with pytest.raises(AuthError, match="oauth_client_id") as info:
        oauth_client(clock, sleeps).find_ticket_ids("snapengage:1")
    assert CLIENT_SECRET not in str(info.value)
    assert not [c for c in responses.calls if c.request.url != TOKENS]


@responses.activate
def test_token_response_without_access_token_is_auth_error(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    responses.add(responses.POST, TOKENS, json={"token_type": "bearer"})
    with pytest.raises(AuthError, match="access_token"):
        oauth_client(clock, sleeps).find_ticket_ids("snapengage:1")


def test_no_credentials_is_config_error(clock: FakeClock, sleeps: Sleeps) -> None:
    with pytest.raises(ConfigError):
        make_client(clock, sleeps, email="", api_token=None)


@responses.activate
def test_retried_request_logs_no_secret(clock: FakeClock, sleeps: Sleeps) -> None:
    add_token(ACCESS_1)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", status=503, headers={"Retry-After": "1"})
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    with capture_logs() as logs:
        oauth_client(clock, sleeps).find_ticket_ids("snapengage:42")
    assert any(e["event"] == "http.retry" for e in logs)
    dumped = json.dumps(logs, default=str)
    for secret in (ACCESS_1, CLIENT_SECRET, "snapengage:42"):
        assert secret not in dumped


# ---------------------------------------------------------------- pacing


def test_pacer_does_not_wait_when_budget_is_ample(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock)
    assert pacer.delay() == 0  # nothing known yet
    pacer.observe({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "650", "ratelimit-reset": "30"})
    assert pacer.delay() == 0


def test_pacer_waits_for_reset_when_remaining_is_low(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock, reserve=5)
    pacer.observe({"x-rate-limit": "700", "x-rate-limit-remaining": "5", "ratelimit-reset": "41"})
    assert pacer.delay() == 41
    clock.now += 40
    assert pacer.delay() == pytest.approx(1)
    clock.now += 1
    assert pacer.delay() == 0  # a new window: the stale count is forgotten


def test_pacer_counts_its_own_requests_down_to_the_reserve(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock, reserve=5)
    pacer.observe({"X-Rate-Limit-Remaining": "7", "ratelimit-reset": "20"})
    pacer.record_request()
    assert pacer.delay() == 0  # 6 left
    pacer.record_request()
    assert pacer.delay() == 20  # 5 left: keep the reserve


def test_pacer_without_reset_header_assumes_a_full_window(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock)
    pacer.observe({"X-Rate-Limit": "200", "X-Rate-Limit-Remaining": "2"})
    assert pacer.delay() == 60


def test_pacer_ignores_junk_headers(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock)
    pacer.observe({"X-Rate-Limit-Remaining": "lots", "ratelimit-reset": "soon"})
    assert pacer.delay() == 0


def test_pacer_take_checks_and_counts_in_one_step(clock: FakeClock) -> None:
    # Several submit workers share the pacer: a slot is either taken (0) or not (the wait).
    pacer = RateLimitPacer(clock=clock, requests_per_minute=3)
    assert [pacer.take() for _ in range(3)] == [0, 0, 0]
    assert pacer.take() == pytest.approx(60)
    assert pacer.take() == pytest.approx(60)  # a refused take is not counted
    clock.now += 60
    assert pacer.take() == 0


def test_pacer_requests_per_minute_cap(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock, requests_per_minute=3)
    for _ in range(3):
        assert pacer.delay() == 0
        pacer.record_request()
        clock.now += 1
    assert pacer.delay() == pytest.approx(57)  # the first send leaves the window at t+60
    clock.now += 57
    assert pacer.delay() == 0


def test_parse_budget_header() -> None:
    assert parse_budget_header("total=30; remaining=29; resets=60") == {
        "total": 30,
        "remaining": 29,
        "resets": 60,
    }
    assert parse_budget_header(None) == {}
    assert parse_budget_header("garbage") == {}


@responses.activate
def test_client_sleeps_when_headers_say_budget_is_low(clock: FakeClock, sleeps: Sleeps) -> None:
    low = {"X-Rate-Limit": "400", "X-Rate-Limit-Remaining": "3", "ratelimit-reset": "12"}
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []}, headers=low)
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []})
    client = make_client(clock, sleeps)
    client.find_ticket_ids("snapengage:1")
    assert sleeps == []
    client.find_ticket_ids("snapengage:2")
    assert sleeps == [12]


@responses.activate
def test_client_does_not_sleep_when_budget_is_ample(clock: FakeClock, sleeps: Sleeps) -> None:
    ample = {"X-Rate-Limit": "400", "X-Rate-Limit-Remaining": "390", "ratelimit-reset": "12"}
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", json={"tickets": []}, headers=ample)
    client = make_client(clock, sleeps)
    for n in range(5):
        client.find_ticket_ids(f"snapengage:{n}")
    assert sleeps == []


@responses.activate
def test_client_observes_headers_of_429_responses(clock: FakeClock, sleeps: Sleeps) -> None:
    """The hook sees every attempt, so a 429's headers inform the next request's pacing."""
    limited = {"Retry-After": "3", "X-Rate-Limit-Remaining": "0", "ratelimit-reset": "3"}
    responses.add(responses.GET, f"{BASE}/api/v2/tickets", status=429, headers=limited)
    responses.add(
        responses.GET,
        f"{BASE}/api/v2/tickets",
        json={"tickets": []},
        headers={"X-Rate-Limit-Remaining": "399", "ratelimit-reset": "60"},
    )
    client = make_client(clock, sleeps)
    client.find_ticket_ids("snapengage:1")
    assert sleeps == [3]
    assert client.pacer.remaining == 399


@responses.activate
def test_wait_for_jobs_gives_up_on_a_job_zendesk_no_longer_returns(
    clock: FakeClock, sleeps: Sleeps
) -> None:
    responses.add(responses.GET, SHOW_MANY, json={"job_statuses": []})
    done = make_client(clock, sleeps).wait_for_jobs(["gone"], timeout=3600)
    assert done == {}
    assert len(responses.calls) == ABSENT_POLLS


def test_pacer_reserve_shrinks_for_small_plans(clock: FakeClock) -> None:
    pacer = RateLimitPacer(clock=clock, reserve=5)
    pacer.observe({"X-Rate-Limit": "10", "X-Rate-Limit-Remaining": "2", "ratelimit-reset": "30"})
    assert pacer.delay() == 0  # reserve is 1 on a 10-rpm plan, not 5
    pacer.record_request()
    assert pacer.delay() == 30


@responses.activate
def test_base_url_path_prefix_is_kept(clock: FakeClock, sleeps: Sleeps) -> None:
    base = "http://127.0.0.1:8765/zendesk"
    responses.add(responses.POST, f"{base}/oauth/tokens", json={"access_token": ACCESS_1})
    responses.add(responses.GET, f"{base}/api/v2/tickets", json={"tickets": [{"id": 5}]})
    client = make_client(
        clock,
        sleeps,
        base_url=base,
        email="",
        api_token=None,
        oauth_client_id="snapzen",
        oauth_client_secret=SecretStr(CLIENT_SECRET),
    )
    assert client.find_ticket_ids("snapengage:1") == [5]
