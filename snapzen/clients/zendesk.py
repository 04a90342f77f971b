"""Sink: Zendesk ticket import, job statuses, lookup and deletion (reference/zendesk-api.md).

Three small parts, each with one job:

- ``RateLimitPacer`` (pure, fake-clock testable): reads the rate-limit headers of every response
  and says how long to wait before the next request, so a long backfill gets no 429 at all;
- the auth classes (``requests.auth.AuthBase``): API token (basic), static OAuth bearer, and
  OAuth client credentials with renewal before expiry and once after a 401;
- ``ZendeskClient``: the endpoints snapzen uses, over the shared ``HttpClient`` retry policy.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from pydantic import ValidationError
from requests.auth import AuthBase

from snapzen.clients.http import HttpClient, header_value
from snapzen.policy.models import EncodedTicket, ImportTicket, JobStatus, ticket_json
from snapzen.support.errors import (
    AmbiguousWriteError,
    AuthError,
    ConfigError,
    NotFoundError,
    PaginationLoopError,
    ProtocolError,
    SnapzenError,
)
from snapzen.support.log import get_logger, register_secret
from snapzen.support.settings import ZendeskAuth, ZendeskSettings

log = get_logger(__name__)

# Most pacing waits one caller may do before sending regardless (see ZendeskClient._send).
_PACING_ROUNDS = 20

MAX_IDS_PER_CALL = 100  # show_many, destroy_many and create_many all cap at 100
API_TOKEN_SUNSET = "2027-04-30"


# ---------------------------------------------------------------- pacing


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def parse_budget_header(value: str | None) -> dict[str, int]:
    """``total=30; remaining=29; resets=60`` → {"total": 30, "remaining": 29, "resets": 60}."""
    result: dict[str, int] = {}
    for part in (value or "").replace(",", ";").split(";"):
        key, sep, raw = part.partition("=")
        number = _parse_int(raw) if sep else None
        if number is not None:
            result[key.strip().lower()] = number
    return result


class RateLimitPacer:
    """Decides how long to wait before the next request from the last rate-limit headers.

    Zendesk sends ``X-Rate-Limit``/``X-Rate-Limit-Remaining`` (account budget per minute) and,
    on ticketing endpoints, ``ratelimit-reset`` (seconds until the window resets). When the
    remaining budget falls to ``reserve`` we wait for the reset instead of spending it: the
    reserve leaves room for other integrations sharing the account, and the 429 never comes.
    Without a reset header the window is assumed to end a minute after it was first seen low.
    ``requests_per_minute`` (our own cap) is enforced over a sliding 60-second window.
    """

    WINDOW_SECONDS = 60.0

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        requests_per_minute: int | None = None,
        reserve: int = 5,
    ) -> None:
        self._clock = clock
        self._rpm = requests_per_minute
        self._reserve = reserve
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._limit: int | None = None
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the budget headers of a response (any status, including 429)."""
        remaining = _parse_int(
            header_value(headers, "X-Rate-Limit-Remaining")
            or header_value(headers, "ratelimit-remaining")
        )
        if remaining is None:
            return
        reset = _parse_int(header_value(headers, "ratelimit-reset"))
        limit = _parse_int(
            header_value(headers, "X-Rate-Limit") or header_value(headers, "ratelimit-limit")
        )
        with self._lock:
            now = self._clock()
            self._remaining = remaining
            if limit is not None and limit > 0:
                self._limit = limit
            if reset is not None:
                self._reset_at = now + max(0, reset)
            elif self._reset_at is None or self._reset_at <= now:
                # Unknown alignment: the worst case is a full window from now.
                self._reset_at = now + self.WINDOW_SECONDS

    def delay(self) -> float:
        """Seconds to wait before sending the next request (0 when it may go now)."""
        with self._lock:
            now = self._clock()
            return max(self._header_delay(now), self._rpm_delay(now))

    def take(self) -> float:
        """``delay`` and ``record_request`` as one step, for callers on several threads:
        0 when the request may leave now (and it is counted), else the seconds to wait
        before asking again."""
        with self._lock:
            now = self._clock()
            wait = max(self._header_delay(now), self._rpm_delay(now))
            if wait <= 0:
                self._sent.append(now)
                if self._remaining is not None:
                    self._remaining -= 1
            return wait

    def spare(self) -> int | None:
        """Requests this window still allows beyond the reserve (our own cap included), or
        None while no budget is known (no rate-limit header seen yet, and no cap of ours)."""
        with self._lock:
            now = self._clock()
            known: list[int] = []
            if self._remaining is not None and self._reset_at is not None:
                if now < self._reset_at:
                    known.append(self._remaining - self._reserve)
                elif self._limit is not None:  # a new window has begun
                    known.append(self._limit - self._reserve)
            if self._rpm is not None:
                self._rpm_delay(now)  # drops requests older than the window
                known.append(self._rpm - len(self._sent))
            return max(0, min(known)) if known else None

    def record_request(self) -> None:
        """Note a request leaving now (counts against our cap and the last known budget)."""
        with self._lock:
            now = self._clock()
            self._sent.append(now)
            if self._remaining is not None:
                self._remaining -= 1

    def _header_delay(self, now: float) -> float:
        if self._remaining is None or self._reset_at is None:
            return 0.0
        if now >= self._reset_at:  # a new window: the old count no longer applies
            self._remaining, self._reset_at = None, None
            return 0.0
        # A reserve of 5 would halve a 10-rpm legacy plan: never keep back more than a tenth.
        reserve = self._reserve if self._limit is None else min(self._reserve, self._limit // 10)
        if self._remaining > reserve:
            return 0.0
        return self._reset_at - now

    def _rpm_delay(self, now: float) -> float:
        if self._rpm is None:
            return 0.0
        while self._sent and self._sent[0] <= now - self.WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) < self._rpm:
            return 0.0
        # The (len - rpm + 1)th oldest send must leave the window before we may send.
        return self._sent[len(self._sent) - self._rpm] + self.WINDOW_SECONDS - now


# ---------------------------------------------------------------- auth


class ZendeskAuthBase(AuthBase):
    """Sets ``Authorization`` on each attempt (so a renewed token is used by retries too)."""

    def header(self) -> str:
        raise NotImplementedError

    def renew_after_unauthorized(self) -> bool:
        """Called after a 401: forget the token; True if a new one can be tried once."""
        return False

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.header()
        return request


_api_token_warned = False


class ApiTokenAuth(ZendeskAuthBase):
    """``Basic base64({email}/token:{api_token})``; Zendesk retires these on 2027-04-30."""

    def __init__(self, email: str, api_token: str) -> None:
        global _api_token_warned
        credentials = f"{email}/token:{api_token}"
        self._header = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
        for secret in (api_token, credentials, self._header):
            register_secret(secret)
        if not _api_token_warned:  # once per process, not once per client
            _api_token_warned = True
            log.warning(
                "zendesk.api_token_deprecated",
                message=f"Zendesk deactivates all API tokens on {API_TOKEN_SUNSET}; "
                "switch to OAuth (SNAPZEN_ZENDESK__OAUTH_CLIENT_ID/_SECRET)",
            )

    def header(self) -> str:
        return self._header


class BearerTokenAuth(ZendeskAuthBase):
    """A static OAuth access token (an admin-created token that does not expire)."""

    def __init__(self, access_token: str) -> None:
        register_secret(access_token)
        self._header = f"Bearer {access_token}"

    def header(self) -> str:
        return self._header


class ClientCredentialsAuth(ZendeskAuthBase):
    """OAuth client credentials: fetch a token, renew it before expiry and once after a 401.

    Renewal happens at 80 % of the token's lifetime, and at least 60 s before it expires, so a
    request never leaves with a token about to die in flight.
    """

    RENEW_FRACTION = 0.8
    RENEW_MARGIN_SECONDS = 60.0

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        http: HttpClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        register_secret(client_secret)
        self._token_url = token_url
        self._body = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._renew_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0  # observable for tests and the status command

    def header(self) -> str:
        with self._lock:
            if self._token is None or (
                self._renew_at is not None and self._clock() >= self._renew_at
            ):
                self._fetch()
            assert self._token is not None
            return f"Bearer {self._token}"

    def renew_after_unauthorized(self) -> bool:
        with self._lock:
            self._token, self._renew_at = None, None
        return True

    def _fetch(self) -> None:
        try:
            body = self._http.request_json(
                "POST",
                self._token_url,
                json=self._body,
                headers={"Accept": "application/json", "Content-Type": "application/json"},
            )
        except SnapzenError as exc:
            raise AuthError(
                f"zendesk OAuth token request failed ({type(exc).__name__}); check "
                "zendesk.oauth_client_id, oauth_client_secret and oauth_scope"
            ) from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("zendesk OAuth token endpoint answered without an access_token")
        register_secret(token)
        self.fetch_count += 1
        self._token = token
        lifetime = _parse_int(str(body.get("expires_in"))) if body.get("expires_in") else None
        if lifetime is None or lifetime <= 0:
            self._renew_at = None  # no stated expiry: renew only when refused
        else:
            ahead = min(self.RENEW_FRACTION * lifetime, lifetime - self.RENEW_MARGIN_SECONDS)
            self._renew_at = self._clock() + max(0.0, ahead)


def build_auth(
    settings: ZendeskSettings, http: HttpClient, clock: Callable[[], float] = time.monotonic
) -> ZendeskAuthBase:
    mode = settings.auth_mode
    if mode is ZendeskAuth.OAUTH_TOKEN and settings.oauth_access_token is not None:
        return BearerTokenAuth(settings.oauth_access_token.get_secret_value())
    if mode is ZendeskAuth.OAUTH_CLIENT_CREDENTIALS and settings.oauth_client_secret is not None:
        return ClientCredentialsAuth(
            token_url=f"{settings.base_url.rstrip('/')}/oauth/tokens",
            client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret.get_secret_value(),
            scope=settings.oauth_scope,
            http=http,
            clock=clock,
        )
    if mode is ZendeskAuth.API_TOKEN and settings.api_token is not None:
        return ApiTokenAuth(settings.email, settings.api_token.get_secret_value())
    raise ConfigError(
        "setting zendesk credentials are required: SNAPZEN_ZENDESK__EMAIL with "
        "SNAPZEN_ZENDESK__API_TOKEN, or SNAPZEN_ZENDESK__OAUTH_ACCESS_TOKEN, or "
        "SNAPZEN_ZENDESK__OAUTH_CLIENT_ID with SNAPZEN_ZENDESK__OAUTH_CLIENT_SECRET"
    )


# ---------------------------------------------------------------- client


def _has_email(user: Any, wanted: str) -> bool:
    email = user.get("email") if isinstance(user, dict) else None
    return isinstance(email, str) and email.strip().lower() == wanted


def _user_summary(user: dict[str, Any]) -> dict[str, Any]:
    # Only what erasure decides on; the name and other profile fields are not kept.
    if not isinstance(user.get("id"), int):
        raise ProtocolError("zendesk GET /api/v2/users/search: a user has no id")
    return {"id": user["id"], "role": user.get("role"), "email": user.get("email")}


def create_many_body(tickets: Sequence[ImportTicket | EncodedTicket]) -> bytes:
    """``{"tickets":[...]}`` around each ticket's JSON: the very bytes ``jsoncodec.dumps_bytes``
    writes for the whole body, without encoding again what the prepare worker encoded."""
    return b'{"tickets":[' + b",".join(ticket_json(t) for t in tickets) + b"]}"


def _check_count(what: str, items: Sequence[Any], limit: int) -> None:
    if not items:
        raise ValueError(f"{what}: nothing to send")
    if len(items) > limit:
        raise ValueError(f"{what}: {len(items)} items, at most {limit} per call")


class ZendeskClient:
    """Safe for concurrent use (the pipeline sends several create_many POSTs at once): the
    pacer and the OAuth token are locked, and each call reads the HTTP status of its own
    responses (no shared "last status")."""

    ABSENT_POLLS_BEFORE_GIVING_UP = 3

    def __init__(
        self,
        settings: ZendeskSettings,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.base_url:
            raise ConfigError("setting zendesk.subdomain or zendesk.base_url is required")
        self._settings = settings
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._base = settings.base_url.rstrip("/")
        self._auth = build_auth(settings, http, clock)
        self.pacer = RateLimitPacer(clock=clock, requests_per_minute=settings.requests_per_minute)
        self._inflight_remaining: int | None = None

    # -- endpoints

    def submit_delay(self) -> float:
        """Seconds before the next request may leave without waiting in the pacer."""
        return self.pacer.delay()

    def spare_requests(self) -> int | None:
        """Requests the current rate window still allows (``RateLimitPacer.spare``)."""
        return self.pacer.spare()

    def submit_import(self, tickets: Sequence[ImportTicket | EncodedTicket]) -> JobStatus:
        """Queue one create_many import job; never retried blindly (see snapzen.clients.http)."""
        _check_count("submit_import", tickets, self._settings.batch_size)
        params = {"archive_immediately": "true"} if self._settings.archive_immediately else None
        body = create_many_body(tickets)
        endpoint = "POST /api/v2/imports/tickets/create_many"
        answer = self._call(
            "POST",
            "/api/v2/imports/tickets/create_many",
            idempotent=False,
            params=params,
            data=body,  # the Content-Type header is set by _send
        )
        try:
            return self._job_status(answer, endpoint)
        except ProtocolError as exc:
            # The job may exist even though we cannot read its id: recover by lookup.
            raise AmbiguousWriteError(f"zendesk {endpoint}: {exc}") from exc

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Current status of each known job; ids Zendesk no longer knows are absent."""
        found: dict[str, JobStatus] = {}
        ids = list(dict.fromkeys(job_ids))  # keep order, drop repeats
        for offset in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[offset : offset + MAX_IDS_PER_CALL]
            answer = self._call(
                "GET", "/api/v2/job_statuses/show_many", params={"ids": ",".join(chunk)}
            )
            items = answer.get("job_statuses") if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise ProtocolError(
                    "zendesk GET /api/v2/job_statuses/show_many: no job_statuses list"
                )
            for item in items:
                status = self._validate_job(item, "GET /api/v2/job_statuses/show_many")
                found[status.id] = status
        return found

    def wait_for_jobs(
        self, job_ids: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, JobStatus]:
        """Poll until every job finished or ``timeout`` (default settings.job_timeout_seconds)
        passed; return the latest status of each job seen (unfinished ones included). A job
        absent from several polls in a row is given up on and stays absent from the result."""
        timeout = self._settings.job_timeout_seconds if timeout is None else timeout
        deadline = self._clock() + timeout
        latest: dict[str, JobStatus] = {}
        absent: dict[str, int] = {}
        pending = list(dict.fromkeys(job_ids))
        while pending:
            seen = self.job_statuses(pending)
            latest.update(seen)
            for job_id in pending:
                absent[job_id] = 0 if job_id in seen else absent.get(job_id, 0) + 1
            # Zendesk sometimes stops returning a job (zenpy #291) or has expired it: after a
            # few absent polls stop waiting for it; the caller recovers it by lookup.
            pending = [
                j
                for j in pending
                if not (j in latest and latest[j].finished)
                and absent[j] < self.ABSENT_POLLS_BEFORE_GIVING_UP
            ]
            if not pending or self._clock() + self._settings.job_poll_seconds > deadline:
                break
            self._sleep(self._settings.job_poll_seconds)
        return latest

    def find_ticket_ids(self, external_id: str) -> list[int]:
        """Ids of (non-archived) tickets with this external_id; usually zero or one."""
        ids: list[int] = []
        pages = self._pages(
            "/api/v2/tickets", {"external_id": external_id}, "tickets", "?external_id=…"
        )
        for tickets in pages:
            ids.extend(
                t["id"] for t in tickets if isinstance(t, dict) and isinstance(t.get("id"), int)
            )
        return ids

    def show_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """One ticket by id, archived ones included; None once deleted (404)."""
        try:
            answer = self._call("GET", f"/api/v2/tickets/{int(ticket_id)}")
        except NotFoundError:
            return None
        ticket = answer.get("ticket") if isinstance(answer, dict) else None
        if not isinstance(ticket, dict):
            raise ProtocolError("zendesk GET tickets/{id}: no ticket object")
        return ticket

    def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]] | None:
        """Every comment of a ticket (archived ones included); None once deleted (404)."""
        found: list[dict[str, Any]] = []
        try:
            path = f"/api/v2/tickets/{int(ticket_id)}/comments"
            for comments in self._pages(path, {}, "comments"):
                found.extend(c for c in comments if isinstance(c, dict))
        except NotFoundError:
            return None
        return found

    def search_tickets(self, query: str) -> Iterator[dict[str, Any]]:
        """Tickets matching a Search API query (archived included; deleted not; the index
        lags writes by minutes). At most 1,000 results per query, a Zendesk limit."""
        for results in self._pages("/api/v2/search", {"query": query}, "results", "?query=…"):
            for item in results:
                if isinstance(item, dict) and item.get("result_type", "ticket") == "ticket":
                    yield item

    def destroy_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        """Soft-delete up to 100 tickets (a background job)."""
        return self._destroy("/api/v2/tickets/destroy_many", ticket_ids)

    def purge_deleted_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        """Permanently delete up to 100 soft-deleted tickets (a background job)."""
        return self._destroy("/api/v2/deleted_tickets/destroy_many", ticket_ids)

    def find_users_by_email(self, email: str) -> list[dict[str, Any]]:
        """Users whose primary email is ``email`` (case-insensitive): id, role and email only.

        Search Users matches partial values too (name, notes, other addresses), so only exact
        matches are kept; the query value never reaches a log line (``redact_url``)."""
        wanted = email.strip().lower()
        found: list[dict[str, Any]] = []
        for users in self._pages("/api/v2/users/search", {"query": email.strip()}, "users"):
            found.extend(_user_summary(u) for u in users if _has_email(u, wanted))
        return found

    def delete_user(self, user_id: int) -> None:
        """Soft-delete one user (404 raises ``NotFoundError``: already gone)."""
        self._call("DELETE", f"/api/v2/users/{int(user_id)}", body=False)

    def purge_deleted_user(self, user_id: int) -> None:
        """Permanently delete a soft-deleted user (404: never soft-deleted, or already purged)."""
        self._call("DELETE", f"/api/v2/deleted_users/{int(user_id)}", body=False)

    @property
    def inflight_jobs_remaining(self) -> int | None:
        """How many more background jobs Zendesk would accept, from the last response seen."""
        return self._inflight_remaining

    # -- plumbing

    def _destroy(self, path: str, ticket_ids: Sequence[int]) -> JobStatus:
        _check_count(path, ticket_ids, MAX_IDS_PER_CALL)
        ids = ",".join(str(int(i)) for i in ticket_ids)
        answer = self._call("DELETE", path, params={"ids": ids})
        return self._job_status(answer, f"DELETE {path}")

    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        idempotent: bool = True,
        body: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Pace, authenticate and send; on a 401 renew a renewable token and try once more.

        ``body=False``: the answer's body is not read (a DELETE may answer 204 with none)."""
        # Plain concatenation, not urljoin: an absolute path would drop a base_url path prefix
        # (e.g. a proxy or the sandbox at http://127.0.0.1:PORT/zendesk).
        url = path_or_url if "://" in path_or_url else self._base + path_or_url
        statuses: list[int] = []  # this call's response statuses, every attempt
        try:
            return self._send(method, url, statuses, idempotent=idempotent, body=body, **kwargs)
        except AuthError:
            # Only a 401 from the API itself means "token refused"; a 403 is a role problem and
            # a failed token request has no API status at all.
            last = statuses[-1] if statuses else None
            if last != 401 or not self._auth.renew_after_unauthorized():
                raise
            # A 401 means the server refused before acting, so even the POST may be repeated.
            log.info("zendesk.token_renewed_after_401", method=method)
            return self._send(method, url, [], idempotent=idempotent, body=body, **kwargs)

    def _send(
        self,
        method: str,
        url: str,
        statuses: list[int],
        *,
        idempotent: bool,
        body: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Pace, then send; ``statuses`` receives the status of every response (attempt)."""
        # Ask again after each wait (two submit workers may both have been told to wait);
        # take() counts the request in the same locked step that grants it. Bounded: after
        # many waits the request is counted and goes, and a 429 would be retried anyway.
        for _ in range(_PACING_ROUNDS):
            wait = self.pacer.take()  # 0: counted and may go now
            if wait <= 0:
                break
            log.info("zendesk.pacing", wait=round(wait, 3), remaining=self.pacer.remaining)
            self._sleep(wait)
        else:
            self.pacer.record_request()

        def observe(response: requests.Response, *args: Any, **kw: Any) -> requests.Response:
            statuses.append(response.status_code)
            return self._observe(response)

        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        send = self._http.request_json if body else self._http.request
        return send(
            method,
            url,
            idempotent=idempotent,
            auth=self._auth,
            headers=headers,
            hooks={"response": [observe]},
            **kwargs,
        )

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Response hook: runs for every attempt, including 429s and retried ones."""
        self.pacer.observe(response.headers)
        inflight = parse_budget_header(
            header_value(response.headers, "zendesk-ratelimit-inflight-jobs")
        )
        if "remaining" in inflight:
            self._inflight_remaining = inflight["remaining"]
        return response

    def _pages(
        self, path: str, params: dict[str, str], key: str, shown_query: str = ""
    ) -> Iterator[list[Any]]:
        """The ``key`` list of each page of a paginated GET, following ``next_page``.
        ``shown_query`` stands for the query in the error (never its value)."""
        url: str | None = path
        query: dict[str, str] | None = params
        seen: set[str] = set()
        while url:
            answer = self._call("GET", url, params=query)
            items = answer.get(key) if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise ProtocolError(f"zendesk GET {path}{shown_query}: no {key} list")
            yield items
            url, query = self._next_page(answer.get("next_page"), seen), None

    def _next_page(self, link: Any, seen: set[str]) -> str | None:
        if not isinstance(link, str) or not link:
            return None
        url = urljoin(self._base + "/", link)
        base = urlsplit(self._base)
        if urlsplit(url)[:2] != base[:2]:
            raise ProtocolError("zendesk next_page link points outside zendesk.base_url")
        if url in seen:
            raise PaginationLoopError("zendesk next_page link repeats an earlier one")
        seen.add(url)
        return url

    @staticmethod
    def _validate_job(item: Any, endpoint: str) -> JobStatus:
        try:
            return JobStatus.model_validate(item)
        except ValidationError as exc:
            raise ProtocolError(f"zendesk {endpoint}: a job status is malformed") from exc

    def _job_status(self, answer: Any, endpoint: str) -> JobStatus:
        job = answer.get("job_status") if isinstance(answer, dict) else None
        if not isinstance(job, dict) or not job.get("id"):
            raise ProtocolError(f"zendesk {endpoint}: answer has no job_status id")
        return self._validate_job(job, endpoint)
