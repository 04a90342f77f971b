"""Stateful fakes of the two APIs behind `responses` (unit level; the sandbox does end to end).

They keep real state (cases by widget, jobs, tickets), so tests assert on outcomes such as
"exactly one ticket per case", not on which mock was called.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

from snapzen.clients.ticket_deletion import DeletionOutcome
from snapzen.ledger.store import outbox

SE_BASE = "https://se.test"
ZD_BASE = "https://zd.test"
ORG = "1234567890123456"
SE_TOKEN = "se-secret-token-abcdef0123456789"
ZD_EMAIL = "admin@company.test"
ZD_TOKEN = "zd-secret-token-9876543210"
LEDGER_KEY = "ledger-key-0123456789abcdef"
# The consent notice the fake pages show (consent.notices; tests/conftest.py sets it).
NOTICE_VERSION = "v1"
NOTICE_SHA256 = "5" * 64
NOTICES = {NOTICE_VERSION: NOTICE_SHA256}
# A complete Art. 30 record (`ledger report` refuses without one).
RECORD_ENV = {
    "SNAPZEN_RECORD__CONTROLLER": "Test Company Ltd",
    "SNAPZEN_RECORD__CONTACT": "privacy@company.test",
    "SNAPZEN_RECORD__LAWFUL_BASIS": "Art. 6(1)(f) legitimate interests",
    "SNAPZEN_RECORD__SECURITY_MEASURES": "TLS to both APIs,ledger file 0600",
}


def create_ledger(path: Path | str, key: str = LEDGER_KEY) -> Path:
    """What `snapzen init` does, for tests: an empty ledger bound to ``key`` (no command
    creates one implicitly any more). Returns the path."""
    from snapzen.ledger.store.db import create_ledger as create

    create(Path(path), key.encode("utf-8"), datetime.now(UTC)).conn.close()
    return Path(path)


def make_case(
    case_id: str,
    *,
    started: datetime,
    country: str | None = "DE",
    consent: str | None = "yes",
    email: str | None = "visitor@example.org",
    name: str = "Visitor Name",
    kind: str = "chat",
    widget: str = "w1",
    messages: list[tuple[str, str]] | None = None,
    consent_in: str = "javascript_variables",
    receipt: str | None = "rcpt-1",
    notice_version: str | None = NOTICE_VERSION,
    extra: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A SnapEngage case; with ``consent``, the consent tool's ``receipt`` and the
    ``notice_version`` shown sit beside it (None leaves one out); ``extra`` pairs go in the
    page's javascript_variables."""
    ms = int(started.timestamp() * 1000)
    lines = messages or [("", "Hello, I need help"), ("Agent Smith", "Sure, how can I help?")]
    transcripts = []
    for offset, (alias, message) in enumerate(lines):
        at = ms + offset * 30_000
        transcripts.append(
            {
                "id": "" if not alias else "wc:agent@company.test",
                "alias": alias,
                "message": message,
                "date": at // 1000,
                "date_seconds": at // 1000,
                "date_milliseconds": at,
            }
        )
    case: dict[str, Any] = {
        "id": case_id,
        "url": f"https://www.snapengage.com/viewcase?c={case_id}",
        "type": kind,
        "requested_by": email,
        "requester_details": {"name": name, "emails": [email] if email else []},
        "description": lines[0][1],
        "created_at_date": ms,
        "created_at_seconds": ms // 1000,
        "created_at_milliseconds": ms,
        "country_code": country,
        "chat_duration": 60 * len(lines),
        "widget_id": widget,
        "transcripts": transcripts,
        "javascript_variables": [],
        "operator_variables": [],
        "labels": [],
    }
    if consent is not None:
        pairs = [{"name": "gdpr_consent", "value": consent}]
        if receipt is not None:
            pairs.append({"name": "gdpr_consent_receipt", "value": receipt})
        if notice_version is not None:
            pairs.append({"name": "gdpr_notice_version", "value": notice_version})
        case[consent_in] = pairs
    case["javascript_variables"] += [{"name": n, "value": v} for n, v in extra]
    return case


@dataclass
class Job:
    id: str
    tickets: list[dict[str, Any]]
    results: list[dict[str, Any]] = field(default_factory=list)
    polls_until_done: int = 1
    polls: int = 0
    applied: bool = False


class FakeApis:
    """SnapEngage logs + Zendesk import/jobs/lookup, with real state."""

    def __init__(self, rsps: responses.RequestsMock, *, page_size: int = 100) -> None:
        self.rsps = rsps
        self.page_size = page_size
        self.cases: dict[str, list[dict[str, Any]]] = {}
        self.tickets: list[dict[str, Any]] = []
        self.jobs: dict[str, Job] = {}
        self.item_errors: dict[str, str] = {}  # external_id -> error details
        self.fail_post_after_accept = 0  # the next N POSTs create the job, then answer 500
        self.fail_post_before_accept = 0  # the next N POSTs answer 500 without creating anything
        self.polls_until_done = 1
        self.reject_batches_with: set[str] = set()  # external ids that make a POST answer 422
        self.job_cap: int | None = None  # unfinished jobs allowed before TooManyJobs
        self.too_many_jobs_next = 0  # the next N POSTs get TooManyJobs (others hold the cap)
        self.hide_jobs = False  # show_many omits every job (Zendesk is known to miss some)
        self.reject_credentials = False  # users/me (and only it) answers 401
        self.send_date = True  # False: answers without a Date header (a proxy that drops it)
        # Job results in doubt: "shifted" (out of step by one, the last id named twice),
        # "duplicate_id" (the second result names the first's ticket), "missing_index" (the
        # last result left out); None: a clean answer.
        self.results_fault: str | None = None
        self.peak_unfinished = 0  # most jobs queued or running at once, seen by a POST
        self.requests: dict[str, int] = {}
        # The pipeline sends several POSTs at once (submit workers): one request at a time
        # here, as a real server's state would be consistent.
        self._lock = threading.Lock()
        self._register()

    # --------------------------------------------------------------- plumbing
    def _count(self, name: str) -> None:
        self.requests[name] = self.requests.get(name, 0) + 1

    def _serial(self, callback: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def locked(request: Any) -> Any:
            with self._lock:
                return callback(request)

        return locked

    def _register(self) -> None:
        self.rsps.add_callback(
            responses.GET, re.compile(rf"{SE_BASE}/api/v2/{ORG}/logs.*"), callback=self._logs
        )
        self.rsps.add_callback(
            responses.POST,
            f"{ZD_BASE}/api/v2/imports/tickets/create_many",
            callback=self._serial(self._create),
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{ZD_BASE}/api/v2/job_statuses/show_many.*"),
            callback=self._serial(self._show_many),
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{ZD_BASE}/api/v2/tickets\?.*"),
            callback=self._serial(self._lookup),
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{ZD_BASE}/api/v2/tickets/show_many.*"),
            callback=self._serial(self._show_tickets),
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{ZD_BASE}/api/v2/job_statuses(\.json)?(\?.*)?$"),
            callback=self._serial(self._list_jobs),
        )
        self.rsps.add_callback(
            responses.GET, f"{ZD_BASE}/api/v2/users/me", callback=self._serial(self._me)
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{ZD_BASE}/api/v2/search/count.*"),
            callback=self._serial(self._search_count),
        )

    def add_cases(self, widget: str, cases: list[dict[str, Any]]) -> None:
        self.cases.setdefault(widget, []).extend(cases)

    # --------------------------------------------------------------- SnapEngage
    def _logs(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("logs")
        if request.headers.get("Authorization") != SE_TOKEN:
            return 401, {}, json.dumps({"error": "unauthorized"})
        query = parse_qs(urlsplit(request.url).query)
        widget = query["widgetId"][0]
        start = date.fromisoformat(query["start"][0])
        end = date.fromisoformat(query["end"][0])
        offset = int(query.get("next", ["0"])[0])
        chosen = [
            c
            for c in self.cases.get(widget, [])
            if not isinstance(c, dict)
            or not isinstance(c.get("created_at_milliseconds"), int)
            or start
            <= datetime.fromtimestamp(c["created_at_milliseconds"] / 1000, UTC).date()
            <= end
        ]
        page = chosen[offset : offset + self.page_size]
        more = offset + self.page_size < len(chosen)
        link = (
            f"{SE_BASE}/api/v2/{ORG}/logs?widgetId={widget}&start={start}&end={end}"
            f"&next={offset + self.page_size}"
            if more
            else ""
        )
        return 200, {}, json.dumps({"cases": page, "linkToNextSetOfResults": link})

    # --------------------------------------------------------------- Zendesk
    def _authorised(self, request: Any) -> bool:
        return str(request.headers.get("Authorization", "")).startswith(("Basic ", "Bearer "))

    def _create(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("create_many")
        if not self._authorised(request):
            return 401, {}, "Couldn't authenticate you"
        if self.fail_post_before_accept:
            self.fail_post_before_accept -= 1
            return 500, {}, "boom"
        tickets = json.loads(request.body)["tickets"]
        if self.reject_batches_with & {t["external_id"] for t in tickets}:
            body = {"error": "RecordInvalid", "description": "Record validation errors"}
            return 422, {}, json.dumps(body)
        unfinished = sum(1 for j in self.jobs.values() if not j.applied)
        self.peak_unfinished = max(self.peak_unfinished, unfinished + 1)
        if self.too_many_jobs_next:
            self.too_many_jobs_next -= 1
            body = {"error": "TooManyJobs", "description": "Too many jobs queued or running"}
            return 429, {"Retry-After": "0"}, json.dumps(body)
        if self.job_cap is not None and unfinished >= self.job_cap:
            body = {"error": "TooManyJobs", "description": "Too many jobs queued or running"}
            return 429, {"Retry-After": "0"}, json.dumps(body)
        job = Job(
            id=f"job{len(self.jobs) + 1}", tickets=tickets, polls_until_done=self.polls_until_done
        )
        self.jobs[job.id] = job
        if self.fail_post_after_accept:
            self.fail_post_after_accept -= 1
            return 500, {}, "Internal error after accepting"
        return 200, self._headers(), json.dumps({"job_status": self._job_json(job)})

    def _headers(self) -> dict[str, str]:
        # Date as every HTTP server sends it (from the real clock): the clock guard's evidence.
        headers = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "650"}
        if self.send_date:
            headers["Date"] = formatdate(usegmt=True)
        return headers

    def run_job(self, job: Job) -> None:
        if job.applied:
            return
        job.applied = True
        for index, ticket in enumerate(job.tickets):
            error = self.item_errors.get(ticket["external_id"])
            if error:
                job.results.append(
                    {"index": index, "error": "TicketCreateFailed", "details": error}
                )
                continue
            ticket_id = len(self.tickets) + 1
            self.tickets.append({**ticket, "id": ticket_id})
            job.results.append({"index": index, "id": ticket_id})
        if self.results_fault and len(job.results) > 1:
            ids = [r.get("id") for r in job.results]
            if self.results_fault == "shifted":
                # Each index names the next item's ticket; the last one names the first's.
                for result, ticket_id in zip(job.results, [*ids[1:], ids[1]], strict=True):
                    result["id"] = ticket_id
            elif self.results_fault == "duplicate_id":
                job.results[1]["id"] = ids[0]
            elif self.results_fault == "missing_index":
                job.results.pop()

    def _job_json(self, job: Job) -> dict[str, Any]:
        done = job.polls >= job.polls_until_done
        if done:
            self.run_job(job)
        return {
            "id": job.id,
            "status": "completed" if done else "queued",
            "total": len(job.tickets),
            "progress": len(job.tickets) if done else 0,
            "results": job.results if done else None,
        }

    def _show_many(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("show_many")
        ids = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        statuses = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is None or self.hide_jobs:
                continue
            job.polls += 1
            statuses.append(self._job_json(job))
        return 200, self._headers(), json.dumps({"job_statuses": statuses})

    def _lookup(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("lookup")
        wanted = parse_qs(urlsplit(request.url).query)["external_id"][0]
        found = [t for t in self.tickets if t["external_id"] == wanted]
        return 200, self._headers(), json.dumps({"tickets": found, "count": len(found)})

    def _show_tickets(self, request: Any) -> tuple[int, dict[str, str], str]:
        # Zendesk answers the tickets it has and silently leaves out unknown ids.
        self._count("tickets_show_many")
        wanted = {int(i) for i in parse_qs(urlsplit(request.url).query)["ids"][0].split(",")}
        found = [t for t in self.tickets if t["id"] in wanted]
        body = {"tickets": found, "next_page": None, "previous_page": None, "count": len(found)}
        return 200, self._headers(), json.dumps(body)

    def _list_jobs(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("job_statuses_list")
        unfinished = [
            {"id": j.id, "job_type": "bulk_import_tickets", "status": "queued", "total": 1}
            for j in self.jobs.values()
            if not j.applied  # listed even when show_many misses it (hide_jobs)
        ]
        body = {"job_statuses": unfinished, "next_page": None, "previous_page": None}
        return 200, self._headers(), json.dumps(body)

    def _search_count(self, request: Any) -> tuple[int, dict[str, str], str]:
        # The one query snapzen counts: `type:ticket tags:snapengage` (first-pass guard).
        self._count("search_count")
        found = [t for t in self.tickets if "snapengage" in (t.get("tags") or [])]
        return 200, self._headers(), json.dumps({"count": len(found)})

    def _me(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("users_me")
        if not self._authorised(request) or self.reject_credentials:
            return 401, {}, json.dumps({"error": "Couldn't authenticate you"})
        user = {"id": 9001, "name": "Integration", "role": "admin", "email": "api@acme.example"}
        return 200, self._headers(), json.dumps({"user": user})

    def complete_all_jobs(self) -> None:
        for job in self.jobs.values():
            job.polls = max(job.polls, job.polls_until_done)
            self.run_job(job)

    def tickets_by_external_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ticket in self.tickets:
            counts[ticket["external_id"]] = counts.get(ticket["external_id"], 0) + 1
        return counts


def recent(minutes_ago: int = 120, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(minutes=minutes_ago)


def staged_case(case_id: str) -> outbox.StagedCase:
    """A minimal staged row (widget w1, a chat started 2026-11-01 12:00 UTC), for tests that
    write the outbox directly."""
    return outbox.StagedCase(
        case_id=case_id,
        widget_id="w1",
        raw_json="{}",
        started_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
        case_type="chat",
    )


class FakeDeleter:
    """A ticket deleter that deletes every ticket it is given (except those in ``refuse``,
    which Zendesk refuses) and remembers which."""

    def __init__(self, refuse: Sequence[int] = ()) -> None:
        self.deleted: list[int] = []
        self.refuse = set(refuse)

    def delete(
        self,
        ticket_ids: Sequence[int],
        *,
        purge: bool,
        expected: Mapping[int, str] | None = None,
    ) -> dict[int, DeletionOutcome]:
        self.deleted.extend(t for t in ticket_ids if t not in self.refuse)
        return {t: DeletionOutcome(deleted=t not in self.refuse) for t in ticket_ids}
