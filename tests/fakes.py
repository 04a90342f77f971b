"""What the unit and integration tests share: the constants of their settings, SnapEngage cases
in the API's shape, and the sandbox (snapzen.sandbox, the one emulator of both APIs) mounted
in-process behind the base URLs below (``SandboxApis``; the ``apis`` fixture in conftest).

Tests assert on the sandbox's state ("exactly one ticket per case"), not on which call was made.
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from werkzeug.wrappers import Request, Response

from snapzen.clients.deletion import DeletionOutcome
from snapzen.ledger.store import outbox
from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.server import IN_PROCESS_URL, Sandbox

BASE = IN_PROCESS_URL  # the in-process sandbox (no socket: Sandbox(serve=False))
SE_BASE = f"{BASE}/snapengage"
ZD_BASE = f"{BASE}/zendesk"
ORG = "1234567890123456"
SE_TOKEN = "se-secret-token-abcdef0123456789"
ZD_EMAIL = "admin@company.test"
ZD_TOKEN = "zd-secret-token-9876543210"
LEDGER_KEY = "ledger-key-0123456789abcdef"
# The consent notice the test pages show (consent.notices; tests/conftest.py sets it).
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


@functools.cache
def _new_ledger_file() -> bytes:
    """The file of a new ledger at today's schema, migrated once per process: a test's ledger
    starts as a copy of it (~3 ms of CPU) instead of running every migration again (~20 ms,
    for several hundred ledgers a run). Tests of creating and migrating ledgers use the real
    commands, and every copy is opened (its schema version checked) by open_db."""
    from snapzen.ledger.store.db import open_db

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "new.db")
        open_db(path, create=True).conn.close()
        return path.read_bytes()


def new_ledger_db(path: Path) -> sqlite_utils.Database:
    """``open_db(path, create=True)``, from the copy above: a new ledger (0600, unbound)."""
    from snapzen.ledger.store.db import create_file, open_db

    create_file(path)
    path.write_bytes(_new_ledger_file())
    return open_db(path)


def create_ledger(path: Path | str, key: str = LEDGER_KEY, now: datetime | None = None) -> Path:
    """What `snapzen init` does (snapzen.ledger.store.db.create_ledger), for tests: an empty
    ledger bound to ``key`` (no command creates one implicitly any more). Returns the path."""
    from snapzen.ledger.store.db import transaction
    from snapzen.ledger.store.identity import bind
    from snapzen.support.atomic import private_dir

    path = Path(path)
    private_dir(path.parent)
    db = new_ledger_db(path)
    with transaction(db) as conn:
        bind(conn, key.encode("utf-8"), now or datetime.now(UTC), origin="init")
    db.conn.close()
    return path


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


# What the tests call each sandbox endpoint (``apis.requests``); others keep the sandbox's name.
_NAMES = {
    "snapengage.logs": "logs",
    "zendesk.import_create_many": "create_many",
    "zendesk.job_statuses_show_many": "show_many",
    "zendesk.tickets_list": "lookup",
    "zendesk.tickets_show_many": "tickets_show_many",
    "zendesk.job_statuses_list": "job_statuses_list",
    "zendesk.users_me": "users_me",
    "zendesk.search_count": "search_count",
    "zendesk.tickets_destroy_many": "destroy_many",
    "zendesk.deleted_tickets_destroy_many": "purge_many",
}
_CREATE = "/zendesk/api/v2/imports/tickets/create_many"
_SHOW_MANY = "/zendesk/api/v2/job_statuses/show_many"
Answer = Callable[[Request], "Response | None"]


class SandboxApis:
    """The sandbox (snapzen.sandbox's WSGI app, in-process) as a test's SnapEngage and Zendesk,
    with the few controls tests use. Its store and data are the sandbox's own; ``answer``
    lets a unit test craft one endpoint's answer (a body the sandbox would never send).

    Jobs run on a clock of their own that moves one second per ``job_statuses/show_many``:
    a job finishes at its ``polls_until_done``-th poll (1: the first), deterministically."""

    def __init__(self, *, page_size: int = 100) -> None:
        self._now = float(int(time.time()))
        cfg = SandboxConfig(
            chats=0,
            long_transcripts=0,
            org_id=ORG,
            snapengage_token=SE_TOKEN,
            zendesk_email=ZD_EMAIL,
            zendesk_token=ZD_TOKEN,
            retention_days=365 * 100,
            page_size=page_size,
            job_seconds=0.5,
            job_retention_seconds=1e9,
            max_jobs_in_flight=10**6,
            rate_limit_per_minute=10**6,
            tickets_index_per_minute=10**6,
        )
        self.box = Sandbox(cfg, serve=False)
        self.app = self.box.app
        self.store = self.app.store
        self.store.clock = self._clock
        self.box.adapter.app = self._serve
        self.adapter = self.box.adapter
        self.item_errors = self.store.refused  # external_id -> error details
        self.answers: dict[str, Answer] = {}  # path -> a crafted answer (None: the sandbox's)
        self.reject_batches_with: set[str] = set()  # external ids that make a POST answer 422
        self.too_many_jobs_next = 0  # the next N POSTs get TooManyJobs (others hold the cap)
        self.hide_jobs = False  # show_many omits every job (Zendesk is known to miss some)
        self.reject_credentials = False  # users/me (and only it) answers 401
        # Job results in doubt: "shifted" (out of step by one, the last id named twice),
        # "duplicate_id" (the second result names the first's ticket), "missing_index" (the
        # last result left out); None: a clean answer.
        self.results_fault: str | None = None
        self.peak_unfinished = 0  # most jobs queued or running at once, seen by a POST
        self._lock = threading.Lock()

    # --------------------------------------------------------------- the clock and controls
    def _clock(self) -> float:
        return self._now

    @property
    def polls_until_done(self) -> int:
        return round(self.store.cfg.job_seconds + 0.5)

    @polls_until_done.setter
    def polls_until_done(self, polls: int) -> None:
        self.store.cfg = replace(self.store.cfg, job_seconds=polls - 0.5)

    @property
    def job_cap(self) -> int:
        return self.store.cfg.max_jobs_in_flight

    @job_cap.setter
    def job_cap(self, cap: int) -> None:
        self.store.cfg = replace(self.store.cfg, max_jobs_in_flight=cap)

    @property
    def page_size(self) -> int:
        return self.app.snapengage.cfg.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self.app.snapengage.cfg = replace(self.app.snapengage.cfg, page_size=size)

    @property
    def send_date(self) -> bool:
        return self.adapter.send_date

    @send_date.setter
    def send_date(self, send: bool) -> None:
        self.adapter.send_date = send

    def _plan(self, after: bool, times: int) -> None:
        self.app.faults.plan("zendesk.import_create_many", "http_500", after=after, times=times)

    # Set to N: the next N import POSTs answer 500, before the job is created or after it
    # (the sandbox's planned faults); reading gives 0 (what is planned is the sandbox's).
    fail_post_before_accept = property(lambda self: 0, lambda self, n: self._plan(False, n))
    fail_post_after_accept = property(lambda self: 0, lambda self, n: self._plan(True, n))

    def answer(self, path: str, craft: Answer) -> None:
        """Requests to ``path`` (under the sandbox's base) get ``craft(request)``'s answer
        when it gives one, else the sandbox's."""
        self.answers[path] = craft

    # --------------------------------------------------------------- WSGI, with the controls
    def _serve(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.removesuffix(".json")
        with self._lock:  # one request at a time, as a real server's state is consistent
            craft = self.answers.get(path)
            response = craft(request) if craft is not None else None
            if response is None:
                response = self._controlled(request, path)
            if response is None:
                if path == _SHOW_MANY:
                    self._now += 1.0
                response = self.app.dispatch(request)
                if path == _SHOW_MANY and self.results_fault:
                    response = self._in_doubt(response)
            return response(environ, start_response)

    def _controlled(self, request: Request, path: str) -> Response | None:
        if path == _CREATE and request.method == "POST":
            tickets = json.loads(request.get_data())["tickets"]
            if self.reject_batches_with & {t.get("external_id") for t in tickets}:
                self.app.requests["zendesk.import_create_many"] += 1
                body = {"error": "RecordInvalid", "description": "Record validation errors"}
                return Response(json.dumps(body), 422, content_type="application/json")
            self.store.tick()
            unfinished = len(self.store.in_flight())
            self.peak_unfinished = max(self.peak_unfinished, unfinished + 1)
            if self.too_many_jobs_next:
                self.too_many_jobs_next -= 1
                self.app.requests["zendesk.import_create_many"] += 1
                body = {"error": "TooManyJobs", "description": "Too many jobs queued or running"}
                answer = Response(json.dumps(body), 429, content_type="application/json")
                answer.headers["Retry-After"] = "0"
                return answer
        if path == _SHOW_MANY and self.hide_jobs:
            self.app.requests["zendesk.job_statuses_show_many"] += 1
            return Response('{"job_statuses": []}', 200, content_type="application/json")
        if path == "/zendesk/api/v2/users/me" and self.reject_credentials:
            self.app.requests["zendesk.users_me"] += 1
            body = {"error": "Couldn't authenticate you"}
            return Response(json.dumps(body), 401, content_type="application/json")
        return None

    def _in_doubt(self, response: Response) -> Response:
        body = json.loads(response.get_data())
        for status in body.get("job_statuses", []):
            results = status.get("results")
            if not isinstance(results, list) or len(results) < 2:
                continue
            ids = [r.get("id") for r in results]
            if self.results_fault == "shifted":
                # Each index names the next item's ticket; the last one names the first's.
                for result, ticket_id in zip(results, [*ids[1:], ids[1]], strict=True):
                    result["id"] = ticket_id
            elif self.results_fault == "duplicate_id":
                results[1]["id"] = ids[0]
            elif self.results_fault == "missing_index":
                results.pop()
        response.set_data(json.dumps(body))
        return response

    # --------------------------------------------------------------- setting up, reading back
    def add_cases(self, widget: str, cases: list[dict[str, Any]], *, replace: bool = False) -> None:
        """SnapEngage serves these chats too (``replace``: instead of the widget's), by their
        created_at_milliseconds (a hostile case without a usable one: as created now)."""
        today = int(time.time() * 1000)
        millis = [
            c["created_at_milliseconds"]
            if isinstance(c, dict) and isinstance(c.get("created_at_milliseconds"), int)
            else today
            for c in cases
        ]
        self.app.snapengage.add_cases(widget, cases, millis, replace=replace)

    @property
    def requests(self) -> dict[str, int]:
        """Requests served so far, by endpoint ("logs", "create_many", "show_many", ...)."""
        return {_NAMES.get(k, k): n for k, n in self.app.requests.items() if n}

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """Zendesk's live tickets (jobs due by now applied): the store's own records, so a test
        may change one as an agent would."""
        self.store.tick()
        with self.store.lock:
            return [r.data for r in self.store.tickets.values() if r.deleted_at is None]

    def add_ticket(self, external_id: str) -> int:
        """A ticket someone else made in Zendesk (an agent, another tool), carrying
        ``external_id``; its id."""
        item = {
            "external_id": external_id,
            "comment": {"body": "made by hand"},
            "requester": {"email": "someone@example.org"},
        }
        return int(self.store.create_ticket(item, False, None).data["id"])

    def complete_all_jobs(self) -> None:
        """Every job submitted so far finishes (as if polled until done)."""
        with self._lock:
            due = [j.done_at for j in self.store.jobs.values() if not j.applied]
            self._now = max([self._now, *due])
            self.store.tick()

    def tickets_by_external_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ticket in self.tickets:
            counts[ticket["external_id"]] = counts.get(ticket["external_id"], 0) + 1
        return counts


SandboxApis = SandboxApis  # the name the tests were written with


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
