"""snapzen.clients.http: the status → error table, Retry-After, the retry budget, the POST rules."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from structlog.testing import capture_logs
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import ProtocolError as Urllib3Protocol

from snapzen.clients.http import (
    DEFAULT_USER_AGENT,
    HttpClient,
    classify,
    parse_retry_after,
    redact_url,
)
from snapzen.support.errors import (
    AmbiguousWriteError,
    AuthError,
    BadRequestError,
    ConflictError,
    InvalidRecordError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RetriesExhausted,
    ServerError,
    TooManyJobsError,
    TransientNetworkError,
)
from snapzen.support.settings import HttpSettings

URL = "https://api.example.test/api/v2/things"
TOKEN = "tok-3f9a1c2e7b6d4058a1c2e7b6d4058a1c"


class Sleeps(list[float]):
    """A recording sleep: tests never really wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def settings() -> HttpSettings:
    return HttpSettings(max_attempts=4, backoff_base_seconds=0.5, max_wait_seconds=30)


@pytest.fixture
def client(settings: HttpSettings, sleeps: Sleeps) -> HttpClient:
    return HttpClient(settings, service="zendesk", sleep=sleeps)


def _response(status: int, **kwargs: object) -> requests.Response:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, status=status, **kwargs)  # type: ignore[arg-type]
        return requests.get(URL, allow_redirects=False, timeout=1)


# ---------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, None, None),
        (204, None, None),
        (302, None, None),
        (429, None, RateLimitedError),
        (429, {"error": "TooManyJobs", "description": "Too many jobs"}, TooManyJobsError),
        (400, {"error": "TooManyJobs"}, TooManyJobsError),
        (403, {"error": "TooManyJobs"}, TooManyJobsError),
        (500, None, ServerError),
        (502, None, ServerError),
        (503, None, ServerError),
        (504, None, ServerError),
        (520, None, ServerError),
        (599, None, ServerError),
        (401, None, AuthError),
        (403, None, AuthError),
        (404, {"error": "RecordNotFound", "description": "Not found"}, NotFoundError),
        (409, None, ConflictError),
        (422, {"error": "RecordInvalid"}, InvalidRecordError),
        (400, {"error": "IdempotentRequestError"}, BadRequestError),
        (405, None, BadRequestError),
        (418, None, BadRequestError),
    ],
)
def test_status_to_error_table(status: int, body: object, expected: type | None) -> None:
    text = "" if status < 400 else "plain text"  # a 204 may not carry a body
    kwargs: dict[str, object] = {"json": body} if body is not None else {"body": text}
    error = classify(_response(status, **kwargs), service="zendesk")
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 429, 500, 503, 599])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body><h1>Bad gateway</h1></body></html>", "text/html"),
        ("Rate limit for ticket updates exceeded, please wait", "text/plain"),
        ("", "text/plain"),
        ("{not json", "application/json"),
        ("\xff\xfe garbage", "application/octet-stream"),
        ('"just a string"', "application/json"),
        ('["a", "list"]', "application/json"),
    ],
)
def test_non_json_error_bodies_never_crash(status: int, body: str, content_type: str) -> None:
    error = classify(_response(status, body=body, content_type=content_type), service="zendesk")
    assert error is not None
    assert f"HTTP {status}" in str(error)


def test_422_message_carries_zendesk_details_without_emails() -> None:
    body = {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {"requester": [{"description": "Requester: jane.doe@example.com is invalid"}]},
    }
    error = classify(_response(422, json=body), service="zendesk")
    assert isinstance(error, InvalidRecordError)
    text = str(error)
    assert "RecordInvalid" in text
    assert "Record validation errors" in text
    assert "Requester:" in text
    assert "jane.doe@example.com" not in text


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_names_service_and_token_never_the_token(status: int) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, status=status, body=f"bad token {TOKEN}")
        response = requests.get(URL, headers={"Authorization": TOKEN}, timeout=1)
    error = classify(response, service="snapengage")
    assert isinstance(error, AuthError)
    text = str(error)
    assert "snapengage" in text
    assert "token" in text
    assert "role" in text or status == 401
    assert TOKEN not in text


def test_403_keeps_zendesk_reason_without_emails() -> None:
    # A 403 as Zendesk sends it for a token lacking a scope or role: error + description.
    body = {
        "error": "Forbidden",
        "description": "You do not have access to this page. Contact admin@acme.example",
    }
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, status=403, json=body)
        response = requests.get(URL, timeout=1)
    error = classify(response, service="zendesk")
    assert isinstance(error, AuthError)
    text = str(error)
    assert "Forbidden" in text and "You do not have access to this page" in text
    assert "scope" in text
    assert "admin@acme.example" not in text and "[email]" in text


def test_retry_after_parsed_from_seconds_and_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 1.5 ") == 1.5
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0
    )
    assert parse_retry_after("-3") == 0
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk) is None
    error = classify(_response(429, headers={"Retry-After": "12"}), service="zendesk")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 12
    assert classify(_response(429), service="zendesk").retry_after is None  # type: ignore[union-attr]


def test_redact_url_keeps_names_and_safe_values_only() -> None:
    url = (
        "https://x.test/api/v2/123/logs?widgetId=w-1&start=2026-01-01&end=2026-01-02"
        "&external_id=snapengage%3A42&email=jane%40example.com&next=abc"
    )
    assert redact_url(url) == (
        "/api/v2/123/logs?widgetId=w-1&start=2026-01-01&end=2026-01-02&external_id=…&email=…&next=…"
    )
    assert redact_url("https://x.test/api/v2/tickets") == "/api/v2/tickets"


# ---------------------------------------------------------------- request: idempotent


@responses.activate
def test_defaults_timeout_and_user_agent(client: HttpClient, settings: HttpSettings) -> None:
    responses.add(responses.GET, URL, json={"ok": True})
    assert client.get_json(URL) == {"ok": True}
    request = responses.calls[0].request
    assert request.req_kwargs["timeout"] == (  # type: ignore[attr-defined]
        settings.connect_timeout_seconds,
        settings.timeout_seconds,
    )
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT


@responses.activate
def test_retry_after_is_honoured(client: HttpClient, sleeps: Sleeps) -> None:
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "7"})
    responses.add(responses.GET, URL, status=503, headers={"Retry-After": "3"})
    responses.add(responses.GET, URL, json={"ok": True})
    assert client.get_json(URL) == {"ok": True}
    assert sleeps == [7, 3]
    assert len(responses.calls) == 3


@responses.activate
def test_retry_after_is_capped_by_max_wait(sleeps: Sleeps) -> None:
    settings = HttpSettings(max_attempts=2, max_wait_seconds=10)
    client = HttpClient(settings, service="zendesk", sleep=sleeps)
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "3600"})
    responses.add(responses.GET, URL, json={})
    client.get_json(URL)
    assert sleeps == [10]


@responses.activate
def test_backoff_without_retry_after_grows_with_jitter(client: HttpClient, sleeps: Sleeps) -> None:
    for _ in range(3):
        responses.add(responses.GET, URL, status=502)
    responses.add(responses.GET, URL, json={})
    client.get_json(URL)
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        base = 0.5 * 2**attempt
        assert base <= slept <= 2 * base


@responses.activate
def test_budget_exhausted_raises_retries_exhausted(client: HttpClient, sleeps: Sleeps) -> None:
    responses.add(responses.GET, URL, status=503, body="maintenance")
    with pytest.raises(RetriesExhausted) as info:
        client.get_json(URL + "?external_id=snapengage%3A1")
    assert len(responses.calls) == 4
    assert len(sleeps) == 3
    assert "GET /api/v2/things?external_id=…" in str(info.value)
    assert "503" in str(info.value)
    assert isinstance(info.value.__cause__, ServerError)


@responses.activate
def test_conflict_is_retried(client: HttpClient) -> None:
    responses.add(responses.GET, URL, status=409)
    responses.add(responses.GET, URL, json={})
    client.get_json(URL)
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (422, InvalidRecordError),
        (400, BadRequestError),
    ],
)
@responses.activate
def test_definite_errors_are_not_retried(client: HttpClient, status: int, error: type) -> None:
    responses.add(responses.GET, URL, status=status)
    with pytest.raises(error):
        client.get_json(URL)
    assert len(responses.calls) == 1


@responses.activate
def test_read_timeout_on_get_is_retried(client: HttpClient) -> None:
    responses.add(responses.GET, URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.add(responses.GET, URL, json={"ok": 1})
    assert client.get_json(URL) == {"ok": 1}


@responses.activate
def test_network_errors_exhaust_into_transient_cause(client: HttpClient) -> None:
    responses.add(responses.GET, URL, body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(RetriesExhausted) as info:
        client.get_json(URL)
    assert isinstance(info.value.__cause__, TransientNetworkError)
    assert isinstance(info.value.__cause__.__cause__, requests.exceptions.ConnectionError)


@responses.activate
def test_malformed_2xx_json_on_a_get_is_retried_like_a_5xx(client: HttpClient) -> None:
    # A truncated answer (a proxy cut it short): a GET is safe to repeat, and the next
    # attempt's complete body is used; the run does not abort on one bad body.
    responses.add(responses.GET, URL, body='{"tickets": [{"id": 1', status=200)
    responses.add(responses.GET, URL, json={"tickets": [{"id": 1}]}, status=200)
    assert client.get_json(URL) == {"tickets": [{"id": 1}]}
    assert len(responses.calls) == 2


@responses.activate
def test_malformed_2xx_json_every_time_exhausts_retries_naming_endpoint(
    client: HttpClient,
) -> None:
    responses.add(responses.GET, URL, body="<html>oops</html>", status=200)
    with pytest.raises(RetriesExhausted, match=r"GET /api/v2/things.*not JSON"):
        client.get_json(URL)
    assert len(responses.calls) == client.settings.max_attempts


@responses.activate
def test_invalid_url_is_not_retried(client: HttpClient) -> None:
    with pytest.raises(ProtocolError):
        client.request("GET", "not a url")


# ---------------------------------------------------------------- request: non-idempotent


def _refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))  # type: ignore[arg-type]


@responses.activate
def test_post_500_is_ambiguous_after_exactly_one_call(client: HttpClient) -> None:
    responses.add(responses.POST, URL, status=500)
    with pytest.raises(AmbiguousWriteError, match="POST /api/v2/things"):
        client.request("POST", URL, idempotent=False, json={})
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [502, 504, 599, 409])
@responses.activate
def test_post_other_retriable_statuses_are_ambiguous(client: HttpClient, status: int) -> None:
    responses.add(responses.POST, URL, status=status)
    with pytest.raises(AmbiguousWriteError):
        client.request("POST", URL, idempotent=False)
    assert len(responses.calls) == 1


@responses.activate
def test_post_503_without_retry_after_is_ambiguous(client: HttpClient) -> None:
    responses.add(responses.POST, URL, status=503)
    with pytest.raises(AmbiguousWriteError):
        client.request("POST", URL, idempotent=False)
    assert len(responses.calls) == 1


@responses.activate
def test_post_503_with_retry_after_is_ambiguous(client: HttpClient, sleeps: Sleeps) -> None:
    # Not "certainly not applied": the import job may already be queued (a re-POST duplicated
    # tickets in the e2e fault test), so the outbox recovers it by external_id lookup.
    responses.add(responses.POST, URL, status=503, headers={"Retry-After": "2"})
    responses.add(responses.POST, URL, json={"job_status": {"id": "j1"}})
    with pytest.raises(AmbiguousWriteError):
        client.request("POST", URL, idempotent=False)
    assert len(responses.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize("body", [None, {"error": "TooManyJobs"}])
@responses.activate
def test_post_429_is_retried(client: HttpClient, sleeps: Sleeps, body: object) -> None:
    responses.add(responses.POST, URL, status=429, json=body, headers={"Retry-After": "5"})
    responses.add(responses.POST, URL, json={"ok": True})
    assert client.request_json("POST", URL, idempotent=False) == {"ok": True}
    assert len(responses.calls) == 2
    assert sleeps == [5]


@responses.activate
def test_post_connection_refused_is_retried(client: HttpClient) -> None:
    responses.add(responses.POST, URL, body=_refused())
    responses.add(responses.POST, URL, json={"ok": True})
    assert client.request_json("POST", URL, idempotent=False) == {"ok": True}
    assert len(responses.calls) == 2


@responses.activate
def test_post_connect_timeout_is_retried(client: HttpClient) -> None:
    responses.add(responses.POST, URL, body=requests.exceptions.ConnectTimeout("syn lost"))
    responses.add(responses.POST, URL, json={})
    client.request_json("POST", URL, idempotent=False)
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError(
            Urllib3Protocol("Connection aborted.", ConnectionResetError(104, "reset"))
        ),
        requests.exceptions.ChunkedEncodingError("truncated"),
    ],
    ids=["read-timeout", "reset", "truncated"],
)
@responses.activate
def test_post_failure_after_send_is_ambiguous(client: HttpClient, exc: Exception) -> None:
    responses.add(responses.POST, URL, body=exc)
    with pytest.raises(AmbiguousWriteError, match="POST /api/v2/things") as info:
        client.request("POST", URL, idempotent=False)
    assert len(responses.calls) == 1
    assert info.value.__cause__ is exc


@responses.activate
def test_post_malformed_2xx_body_is_ambiguous(client: HttpClient) -> None:
    responses.add(responses.POST, URL, body="<html>proxy page</html>")
    with pytest.raises(AmbiguousWriteError):
        client.request_json("POST", URL, idempotent=False)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(("status", "error"), [(401, AuthError), (422, InvalidRecordError)])
@responses.activate
def test_post_definite_rejections_raise_as_is(client: HttpClient, status: int, error: type) -> None:
    responses.add(responses.POST, URL, status=status, json={"error": "x"})
    with pytest.raises(error):
        client.request("POST", URL, idempotent=False)
    assert len(responses.calls) == 1


def test_real_connection_refused_is_retried_even_for_post(sleeps: Sleeps) -> None:
    """No mock: a loopback port nobody listens on gives a genuine refused connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = HttpSettings(max_attempts=3, connect_timeout_seconds=2, timeout_seconds=2)
    client = HttpClient(settings, service="zendesk", sleep=sleeps)
    with pytest.raises(RetriesExhausted) as info:
        client.request("POST", f"http://127.0.0.1:{port}/x", idempotent=False)
    assert isinstance(info.value.__cause__, TransientNetworkError)
    assert len(sleeps) == 2


# ---------------------------------------------------------------- logging


@responses.activate
def test_retry_is_logged_without_token_or_personal_query_values(
    client: HttpClient, sleeps: Sleeps
) -> None:
    url = URL + "?external_id=snapengage%3A9&email=jane%40example.com&start=2026-01-01"
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "4"}, body=TOKEN)
    responses.add(responses.GET, URL, json={"ok": True})
    with capture_logs() as logs:
        client.get_json(url, headers={"Authorization": TOKEN})
    retries = [entry for entry in logs if entry["event"] == "http.retry"]
    assert len(retries) == 1
    entry = retries[0]
    assert entry["log_level"] == "warning"
    assert entry["service"] == "zendesk"
    assert entry["method"] == "GET"
    assert entry["status"] == 429
    assert entry["attempt"] == 1
    assert entry["wait"] == 4
    assert entry["url"] == "/api/v2/things?external_id=…&email=…&start=2026-01-01"
    dumped = json.dumps(logs, default=str)
    assert TOKEN not in dumped
    assert "jane" not in dumped
    assert "Authorization" not in dumped
