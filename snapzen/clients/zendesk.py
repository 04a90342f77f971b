"""Sink: Zendesk ticket import, job statuses, lookup and deletion (docs/zendesk.md).

``ZendeskClient``: the endpoints snapzen uses, over the shared ``HttpClient`` retry policy,
paced by ``snapzen.clients.pacing`` and authenticated by ``snapzen.clients.zendesk_auth``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import requests
from pydantic import ValidationError

from snapzen.clients.http import HttpClient, http_date
from snapzen.clients.origin import next_page
from snapzen.clients.pacing import (
    TICKETS_INDEX_HEADERS,
    ListBudget,
    RateLimitPacer,
)
from snapzen.clients.search_lag import LagWindow, by_id, has_email, int_field
from snapzen.clients.zendesk_auth import build_auth
from snapzen.policy.models import (
    EncodedTicket,
    ImportTicket,
    JobStatus,
    still_running,
    ticket_json,
)
from snapzen.support import errors
from snapzen.support.errors import NotFoundError, ProtocolError
from snapzen.support.log import get_logger
from snapzen.support.settings import ZendeskSettings

log = get_logger(__name__)
T = TypeVar("T")

# Most pacing waits one caller may do before sending regardless (see ZendeskClient._send).
_PACING_ROUNDS = 20

MAX_IDS_PER_CALL = 100  # show_many, destroy_many and create_many all cap at 100
# Job statuses that mean "not finished yet" (Zendesk's list shows these first).
_UNFINISHED = frozenset({"queued", "working"})
# The bulk reads' own budgets (requests a minute, account-wide): paced here, so a long
# reconciliation waits between pages instead of collecting 429s.
INCREMENTAL_EXPORT_RPM = 10
SEARCH_EXPORT_RPM = 100


def _after_url(answer: dict[str, Any]) -> Any:
    """The incremental export's next page: ``after_url`` until ``end_of_stream``."""
    if answer.get("end_of_stream") is True:
        return None
    link = answer.get("after_url")
    if not isinstance(link, str) or not link:  # not "no next page": the read is unfinished
        raise ProtocolError("zendesk incremental ticket export: no after_url")
    return link


def _links_next(answer: dict[str, Any]) -> Any:
    """Export Search Results' next page: ``links.next`` while ``meta.has_more``."""
    meta, links = answer.get("meta") or {}, answer.get("links") or {}
    if not (isinstance(meta, dict) and meta.get("has_more") is True):
        return None
    link = links.get("next") if isinstance(links, dict) else None
    if not isinstance(link, str) or not link:  # not "no next page": the read is unfinished
        raise ProtocolError("zendesk search export: has_more without links.next")
    return link


# ---------------------------------------------------------------- client


def _user_summary(user: dict[str, Any]) -> dict[str, Any]:
    # Only what erasure decides on; the name and other profile fields are not kept.
    if not isinstance(user.get("id"), int):
        raise ProtocolError("zendesk GET /api/v2/users/search: a user has no id")
    return {"id": user["id"], "role": user.get("role"), "email": user.get("email")}


def _part(answer: Any, key: str, kind: type[T], where: str) -> T:
    """``answer[key]`` when the answer is an object holding a ``kind`` (a list, an object)
    there; else ProtocolError: the answer is unusable."""
    value = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(value, kind):
        raise ProtocolError(f"zendesk {where}: no {key} {'list' if kind is list else 'object'}")
    return value


def _check_count(what: str, items: Sequence[Any], limit: int) -> None:
    if not items:
        raise ValueError(f"{what}: nothing to send")
    if len(items) > limit:
        raise ValueError(f"{what}: {len(items)} items, at most {limit} per call")


class ZendeskClient:
    """Safe for concurrent use (the pipeline sends several create_many POSTs at once): the
    pacer and the OAuth token are locked, and each call reads the HTTP status of its own
    responses (no shared "last status")."""

    def __init__(
        self,
        settings: ZendeskSettings,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.base_url:
            raise errors.ConfigError("setting zendesk.subdomain or zendesk.base_url is required")
        self._settings = settings
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._base = settings.base_url.rstrip("/")
        # Every request carries the token (or client secret): only ever to this origin.
        http.credential_base = self._base
        self._auth = build_auth(settings, http, clock)
        self.pacer = RateLimitPacer(clock=clock, requests_per_minute=settings.requests_per_minute)
        # List Tickets' own 100/minute budget, which the external_id lookups spend.
        self.tickets_index = ListBudget(TICKETS_INDEX_HEADERS, clock=clock)
        self._server_time: datetime | None = None
        # What search has not indexed yet, read once for this client's run (search_lag).
        self.lag_window = LagWindow(self)
        self._export_sent: dict[str, float] = {}  # bulk read endpoint -> its last request

    # -- endpoints

    def server_time(self) -> datetime | None:
        """Zendesk's clock: the ``Date`` header of the newest answer (None before any, or when
        it had none that parses). Evidence the local clock cannot make (commands.clock_guard)."""
        return self._server_time

    def submit_import(self, tickets: Sequence[ImportTicket | EncodedTicket]) -> JobStatus:
        """Queue one create_many import job; never retried blindly (see snapzen.clients.http)."""
        _check_count("submit_import", tickets, self._settings.batch_size)
        params = {"archive_immediately": "true"} if self._settings.archive_immediately else None
        # Each ticket's JSON as preparing the batch encoded it: the very bytes
        # jsoncodec.dumps_bytes writes for the whole body, without encoding them again.
        body = b'{"tickets":[' + b",".join(ticket_json(t) for t in tickets) + b"]}"
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
            raise errors.AmbiguousWriteError(f"zendesk {endpoint}: {exc}") from exc

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Current status of each known job; ids Zendesk no longer knows are absent."""
        endpoint = "GET /api/v2/job_statuses/show_many"
        items = self._show_many("/api/v2/job_statuses/show_many", job_ids, "job_statuses")
        return {job.id: job for job in (self._validate_job(item, endpoint) for item in items)}

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
            pending = still_running(pending, seen, absent)
            if not pending or self._clock() + self._settings.job_poll_seconds > deadline:
                break
            self._sleep(self._settings.job_poll_seconds)
        return latest

    def find_ticket_ids(self, external_id: str) -> list[int]:
        """Ids of (non-archived) tickets with this external_id; usually zero or one."""
        pages = self._pages(
            "/api/v2/tickets",
            {"external_id": external_id},
            "tickets",
            "?external_id=…",
            before=lambda: self._paced(self.tickets_index, "zendesk.pacing_tickets_index"),
        )
        return [ticket_id for tickets in pages for ticket_id in by_id(tickets)]

    def show_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """One ticket by id, archived ones included; None once deleted (404)."""
        try:
            answer = self._call("GET", f"/api/v2/tickets/{int(ticket_id)}")
        except NotFoundError:
            return None
        return _part(answer, "ticket", dict, "GET tickets/{id}")

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

    def check_credentials(self) -> dict[str, Any]:
        """``GET /api/v2/users/me``: who the credentials authenticate as (id and role).

        One cheap call at the start of a pass, so a wrong or expired token fails the pass even
        when nothing is due. A refused token raises ``AuthError`` (401/403); an answer for the
        anonymous user (``id`` null, what Zendesk shows a request it did not authenticate)
        raises it too."""
        answer = self._call("GET", "/api/v2/users/me")
        user = _part(answer, "user", dict, "GET /api/v2/users/me")
        if not isinstance(user.get("id"), int):
            raise errors.AuthError(
                "zendesk GET /api/v2/users/me answered for an anonymous user: the credentials "
                "were not accepted; check the Zendesk API token or OAuth token"
            )
        return {"id": user["id"], "role": user.get("role")}

    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        """``tickets/show_many`` (≤100 ids a call): each ticket id Zendesk has, with its
        external_id. Unknown and deleted tickets are absent (Zendesk leaves them out)."""
        return {
            ticket_id: value if isinstance(value := item.get("external_id"), str) else None
            for ticket_id, item in self._live_tickets(ticket_ids).items()
        }

    def unfinished_jobs(self) -> list[JobStatus]:
        """Background jobs of the account still queued or working (``GET job_statuses``).

        Zendesk lists unfinished jobs first (sorted by completion, then creation, newest
        first), so the first page holds them all unless more than a page is unfinished, far
        beyond the account's 30-job cap."""
        answer = self._call("GET", "/api/v2/job_statuses")
        items = _part(answer, "job_statuses", list, "GET /api/v2/job_statuses")
        jobs = [self._validate_job(item, "GET /api/v2/job_statuses") for item in items]
        return [job for job in jobs if job.status in _UNFINISHED]

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
        pages = self._pages("/api/v2/users/search", {"query": email.strip()}, "users")
        return [_user_summary(u) for users in pages for u in users if has_email(u, email)]

    def ticket_requesters(self, ticket_ids: Sequence[int]) -> dict[int, int]:
        """``tickets/show_many``: ticket id -> requester id, for the live tickets Zendesk has
        (read before deleting them: a deleted ticket no longer shows its requester)."""
        return {
            ticket_id: requester
            for ticket_id, item in self._live_tickets(ticket_ids).items()
            if (requester := int_field(item, "requester_id")) is not None
        }

    def show_user(self, user_id: int) -> dict[str, Any] | None:
        """``GET users/{id}``: id, role and email only; None when there is no such user."""
        try:
            answer = self._call("GET", f"/api/v2/users/{int(user_id)}")
        except NotFoundError:
            return None
        user = answer.get("user") if isinstance(answer, dict) else None
        return _user_summary(user) if isinstance(user, dict) else None

    def user_ticket_ids(self, user_id: int) -> list[int]:
        """Every ticket naming the user as requester, CC or submitter, newest data first:
        ``users/{id}/tickets/requested``, ``users/{id}/tickets/ccd`` (neither lags), and a
        search for ``submitter:{id}`` with the tickets changed in the last minutes, which
        search may not show yet (``lag_window``: read once for many users). Soft-deleted
        tickets are not listed; a 404 means no such user."""
        found: dict[int, None] = {}
        for how in ("requested", "ccd"):
            try:
                for page in self._pages(
                    f"/api/v2/users/{int(user_id)}/tickets/{how}", {}, "tickets"
                ):
                    found.update(dict.fromkeys(by_id(page)))
            except NotFoundError:
                return []
        searched = by_id(self.search_tickets(f"type:ticket submitter:{int(user_id)}"))
        found.update(dict.fromkeys(self._unlagged(searched, "submitter_id", {user_id})))
        return sorted(found)

    def requested_tickets(self, email: str) -> list[dict[str, Any]]:
        """The tickets whose requester's primary email is ``email``, by id: a search for
        ``requester:{email}``, and the tickets changed in the last minutes that search may
        not show yet (``lag_window``), their requesters not already known read by
        ``users/show_many`` (≤100 a request; neither lags). The address reaches no log."""
        query = f"type:ticket requester:{email.strip()}"
        searched = by_id(self.search_tickets(query))
        mine = {r for t in searched.values() if (r := int_field(t, "requester_id")) is not None}
        window = self.lag_window.tickets().values()
        live = (t for t in window if t.get("status") != "deleted")
        unknown = {r for t in live if (r := int_field(t, "requester_id")) is not None} - mine
        for user_id, address in self.show_users(sorted(unknown)).items():
            if has_email({"email": address}, email):
                mine.add(user_id)
        return list(self._unlagged(searched, "requester_id", mine).values())

    def delete_user(self, user_id: int) -> None:
        """Soft-delete one user (404 raises ``NotFoundError``: already gone)."""
        self._call("DELETE", f"/api/v2/users/{int(user_id)}", body=False)

    def purge_deleted_user(self, user_id: int) -> None:
        """Permanently delete a soft-deleted user (404: never soft-deleted, or already purged)."""
        self._call("DELETE", f"/api/v2/deleted_users/{int(user_id)}", body=False)

    def incremental_tickets(self, start_time: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of the cursor-based Incremental Ticket Export: every ticket changed since
        ``start_time`` (unix seconds, at least a minute ago), archived and deleted ones
        included (deleted: status ``deleted``). Follows ``after_url`` to ``end_of_stream``,
        at most INCREMENTAL_EXPORT_RPM requests a minute."""
        pages = self._pages(
            "/api/v2/incremental/tickets/cursor",
            {"start_time": str(int(start_time))},
            "tickets",
            before=lambda: self._export_pace("incremental", INCREMENTAL_EXPORT_RPM),
            next_link=_after_url,
        )
        return ([item for item in page if isinstance(item, dict)] for page in pages)

    def search_export(self, query: str, page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Pages of Export Search Results for tickets (no 1,000-result cap; cursor paging by
        ``links.next`` while ``meta.has_more``), at most SEARCH_EXPORT_RPM requests a minute.
        Search is indexed: tickets from the last minutes may not be found yet."""
        pages = self._pages(
            "/api/v2/search/export",
            {"query": query, "filter[type]": "ticket", "page[size]": str(page_size)},
            "results",
            "?query=…",
            before=lambda: self._export_pace("search_export", SEARCH_EXPORT_RPM),
            next_link=_links_next,
        )
        return ([item for item in page if isinstance(item, dict)] for page in pages)

    def search_count(self, query: str) -> int:
        """``GET /api/v2/search/count``: how many results ``query`` has (one request)."""
        answer = self._call("GET", "/api/v2/search/count", params={"query": query})
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ProtocolError("zendesk GET /api/v2/search/count: no count in the answer")
        return count

    def show_users(self, user_ids: Sequence[int]) -> dict[int, str | None]:
        """``users/show_many`` (100 ids a call): each user Zendesk has, with its email.
        Reconciliation derives the subject reference of an adopted ticket from its
        requester's email; the values never reach a log line."""
        users = by_id(self._show_many("/api/v2/users/show_many", user_ids, "users"))
        return {i: e if isinstance(e := u.get("email"), str) else None for i, u in users.items()}

    def _export_pace(self, endpoint: str, per_minute: int) -> None:
        last = self._export_sent.get(endpoint)
        if last is not None:
            wait = last + 60.0 / per_minute - self._clock()
            if wait > 0:
                log.info("zendesk.export_pacing", endpoint=endpoint, wait=round(wait, 2))
                self._sleep(wait)
        self._export_sent[endpoint] = self._clock()

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
        try:
            return self._send(method, url, idempotent=idempotent, body=body, **kwargs)
        except errors.AuthError as exc:
            # Only a 401 from the API itself means "token refused"; a 403 is a role problem and
            # a failed token request has no API status at all.
            if exc.status == 401 and self._auth.refused:
                raise errors.AuthError(f"{exc}; {self._auth.refused}", 401) from exc
            if exc.status != 401 or not self._auth.renew_after_unauthorized():
                raise
            # A 401 means the server refused before acting, so even the POST may be repeated.
            log.info("zendesk.token_renewed_after_401", method=method)
            return self._send(method, url, idempotent=idempotent, body=body, **kwargs)

    def _send(self, method: str, url: str, *, idempotent: bool, body: bool, **kwargs: Any) -> Any:
        """Pace, then send (``_observe`` sees every response, every attempt)."""
        # Ask again after each wait (another thread, e.g. the POST's, may have been told to wait);
        # take() counts the request in the same locked step that grants it. Bounded: after
        # many waits the request is counted and goes, and a 429 would be retried anyway.
        if not self._paced(self.pacer, "zendesk.pacing"):
            self.pacer.record_request()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        send = self._http.request_json if body else self._http.request
        return send(
            method,
            url,
            idempotent=idempotent,
            auth=self._auth,
            headers=headers,
            hooks={"response": [self._observe]},
            **kwargs,
        )

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Response hook: runs for every attempt, including 429s and retried ones."""
        self.pacer.observe(response.headers)
        self.tickets_index.observe(response.headers)
        self._server_time = http_date(response.headers.get("Date"))  # case-insensitive
        return response

    def _paced(self, budget: RateLimitPacer | ListBudget, event: str) -> bool:
        """Wait until ``budget`` grants a request (True), or give up after _PACING_ROUNDS
        waits (False)."""
        for _ in range(_PACING_ROUNDS):
            wait = budget.take()  # 0: counted and may go now
            if wait <= 0:
                return True
            log.info(event, wait=round(wait, 3), remaining=budget.remaining)
            self._sleep(wait)
        return False

    def _unlagged(
        self, searched: dict[int, dict[str, Any]], field: str, people: set[int]
    ) -> dict[int, dict[str, Any]]:
        """What a search for the tickets whose ``field`` names one of ``people`` would find
        without its lag (``LagWindow.merged``; the window's additions read live again)."""
        return self.lag_window.merged(
            searched,
            lambda t: t.get(field) in people,
            lambda ids: self._live_tickets(ids).values(),
        )

    def _live_tickets(self, ticket_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """``tickets/show_many``: the tickets as Zendesk shows them now, by id (unknown and
        deleted ones left out)."""
        return by_id(self._show_many("/api/v2/tickets/show_many", ticket_ids, "tickets"))

    def _show_many(self, path: str, ids: Sequence[int | str], key: str) -> Iterator[Any]:
        """The ``key`` items of a ``show_many`` GET, asked ≤100 distinct ids a call."""
        unique = list(dict.fromkeys(str(i) if isinstance(i, str) else str(int(i)) for i in ids))
        for offset in range(0, len(unique), MAX_IDS_PER_CALL):
            chunk = ",".join(unique[offset : offset + MAX_IDS_PER_CALL])
            answer = self._call("GET", path, params={"ids": chunk})
            yield from _part(answer, key, list, f"GET {path}")

    def _pages(
        self,
        path: str,
        params: dict[str, str],
        key: str,
        shown_query: str = "",
        *,
        before: Callable[[], object] = lambda: None,
        next_link: Callable[[dict[str, Any]], Any] = lambda answer: answer.get("next_page"),
    ) -> Iterator[list[Any]]:
        """The ``key`` list of each page of a paginated GET, following ``next_link`` of each
        answer (``next_page``; the exports have their own cursors). ``shown_query`` stands for
        the query in the error (never its value); ``before`` runs before each page is asked for
        (an endpoint's own pacing)."""
        url: str | None = path
        query: dict[str, str] | None = params
        seen: set[str] = set()
        while url:
            before()
            answer = self._call("GET", url, params=query)
            yield _part(answer, key, list, f"GET {path}{shown_query}")
            url, query = self._next_page(next_link(answer), seen), None

    def _next_page(self, link: Any, seen: set[str]) -> str | None:
        if not isinstance(link, str) or not link:
            return None
        return next_page(link, self._base + "/", self._base, seen, "zendesk")

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
