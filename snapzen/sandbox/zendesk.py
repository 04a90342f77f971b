"""The fake Zendesk account and its API: ticket imports (one, or up to 100 by a job), job
statuses, lookups, updates, deletion and permanent deletion, users, OAuth tokens.

Jobs have no worker thread: a job's status is a function of the clock (queued, working, then
completed after ``job_seconds``) and its effects are applied, in creation order, by ``tick()``,
which the app calls before every Zendesk request: jobs finish on Zendesk's side whether or not
anyone polls, and their tickets appear only once they have run. The app holds ``lock`` around
each handler; the methods tests call directly take it themselves (it is reentrant).
Its endpoints are the functions of ``zendesk_api``.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request

from snapzen.sandbox.config import SandboxConfig, service_time
from snapzen.sandbox.data import is_valid_email
from snapzen.sandbox.responses import ApiError, JsonDict, error, not_found

STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
# Zendesk refuses a comment body over about 64 KB of UTF-8 ("depending on your encoding"),
# whatever its length in characters.
COMMENT_MAX_BYTES = 65_536
# The background jobs, by Zendesk's job_type.
IMPORT, DESTROY, PURGE = (
    "bulk_import_tickets",
    "bulk_delete_tickets",
    "bulk_permanent_delete_tickets",
)
_QUEUED_FRACTION = 0.3  # share of job_seconds spent "queued" before a job turns "working"
_TOO_MANY_JOBS = "Too many TicketImportJob jobs are currently queued or running. Try again later."
# OAuth scopes (spec): a token lacking the one an endpoint needs gets a Forbidden; user search
# and deletion need users:*. Where Zendesk documents none (users/me, job statuses, deleted
# tickets) the sandbox asks for none; every other endpoint here reads or writes tickets.
_UNSCOPED = {"users_me", "job_status", "job_statuses_show_many", "job_statuses_list"}
_UNSCOPED |= {"deleted_tickets_list", "deleted_tickets_destroy_many"}
_USERS = {"users_search", "users_show_many", "user_show", "user_delete", "deleted_user_delete"}
# "All API tokens permanently deactivated: all API calls using API tokens will fail" (Zendesk's
# OAuth migration timeline): from this moment on the account's clock, Basic auth gets a 401.
API_TOKENS_DEACTIVATED = datetime(2027, 4, 30, tzinfo=UTC).timestamp()


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class TicketRecord:
    data: JsonDict
    archived: bool = False
    deleted_at: str | None = None
    job_id: str | None = None
    created_ts: float = 0.0  # sandbox clock at creation: the age archiving counts from
    changed_ts: float = 0.0  # sandbox clock at the last change (the export's order)
    indexed: JsonDict | None = None  # the ticket as search sees it (None: not in the index)

    def shown(self) -> JsonDict:
        """The ticket as Zendesk's API shows it: a Ticket object has no comments (they are
        at tickets/{id}/comments; the first one's body is the ``description``)."""
        return {key: value for key, value in self.data.items() if key != "comments"}


@dataclass
class Job:
    id: str
    kind: str  # Zendesk's job_type: IMPORT, DESTROY or PURGE
    items: list[Any]  # the parsed request body's, owned by the job (a copy cost the most)
    archive: bool
    created: float
    done_at: float
    applied: bool = False
    results: Any = None
    message: str | None = None
    failed: bool = False  # ended "failed", having done nothing

    @property
    def working_at(self) -> float:
        return self.created + (self.done_at - self.created) * _QUEUED_FRACTION

    def state(self, now: float) -> str:
        if now < self.working_at:
            return "queued"
        if now < self.done_at:
            return "working"
        return "failed" if self.failed else "completed"


def _comment_body(comment: JsonDict) -> str:
    for key in ("body", "value", "html_body"):
        value = comment.get(key)
        if isinstance(value, str) and value and not value.isspace():
            return value
    return ""


def validate_ticket(item: object, strict_requester: bool) -> str | None:
    """Zendesk's per-item error details for an invalid import item, else None.

    ``strict_requester``: refuse a requester without an email, as an account whose settings
    do not create users from a name alone does."""
    if not isinstance(item, dict):
        return "Ticket: must be an object"
    comments, comment = item.get("comments"), item.get("comment")
    if not (isinstance(comments, list) and comments):
        comments = None
    candidates: list[Any] = comments or [comment]
    if not all(isinstance(c, dict) for c in candidates):
        return "Comments: must be objects" if comments else "Description: cannot be blank"
    bodies = [_comment_body(c) for c in candidates]
    if not any(bodies):
        return "Description: cannot be blank"
    if len(candidates) > 5000:
        return "Comments: a ticket can contain up to 5000 comments"
    # surrogatepass: a lone surrogate (valid as a JSON escape) counts as the 3 bytes it takes.
    if any(len(body.encode("utf-8", "surrogatepass")) > COMMENT_MAX_BYTES for body in bodies):
        return "Comment: body is too long"
    requester, requester_id = item.get("requester"), item.get("requester_id")
    if requester_id is not None and not isinstance(requester_id, int):
        return "Requester: is invalid"
    if requester is None and requester_id is None and strict_requester:
        return "Requester: cannot be blank"
    if requester is not None:
        if not isinstance(requester, dict):
            return "Requester: is invalid"
        email = requester.get("email")
        if email is not None and not is_valid_email(email):
            return "Requester: Email is invalid"
        if email is None and not str(requester.get("name") or "").strip():
            return "Requester: Name is too short (minimum is 1 character)"
        if email is None and strict_requester:
            return "Requester: Email cannot be blank"
    status = item.get("status")
    return None if status is None or status in STATUSES else f"Status: {status} is not valid"


class Zendesk:
    def __init__(self, cfg: SandboxConfig, clock: Callable[[], float] = service_time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.now = clock()
        self.base_url = "http://127.0.0.1"  # where the sandbox answers, once known
        self.lock = threading.RLock()
        self.tickets: dict[int, TicketRecord] = {}
        self.purged: set[int] = set()
        # (when, ticket) per change, oldest first: search's index takes each in once it is
        # search_index_lag_seconds old (see ``searchable``).
        self.unindexed: deque[tuple[float, TicketRecord]] = deque()
        self.jobs: dict[str, Job] = {}
        self.tokens: dict[str, tuple[float, set[str]]] = {}  # OAuth token -> expiry, scope
        # Users as the API shows them: live and soft-deleted ("active": false); purged ones go.
        self.users: dict[int, JsonDict] = {}
        self.user_by_email: dict[str, int] = {}  # live users only
        # User id -> when it was created, on the sandbox's clock: users/search finds a user
        # only search_index_lag_seconds later, as Zendesk's index ("new tickets, users, and
        # other resources") lags (see ``indexed_users``).
        self.user_created: dict[int, float] = {}
        self.purged_users: set[int] = set()
        # Controls for tests, empty otherwise: external_id -> the error details an import item
        # with it gets (a reason the emulator does not model); ticket id -> the status its
        # deletion gets ("Forbidden"); how many of the next deletion jobs fail as a whole.
        self.refused: dict[str, str] = {}
        self.undeletable: dict[int, str] = {}
        self.failing_deletions = 0
        self._next_ticket, self._next_comment, self._next_user = 1, 900_000_001, 10_000_001
        # The account the API credentials belong to: GET users/me answers with it, and a
        # comment imported without author_id is written by it (Zendesk's documented default).
        # It predates the sandbox: search finds it at once.
        self.api_user_id = self.add_user(
            cfg.zendesk_email, name="Sandbox Admin", role="admin", created=-math.inf
        )

    @property
    def api(self) -> str:
        return f"{self.base_url}/zendesk/api/v2"

    # ---- the clock: jobs run, old job statuses go, solved tickets get archived -----------------
    def tick(self) -> float:
        with self.lock:
            now = self.now = self.clock()
            for job in [j for j in self.jobs.values() if not j.applied and j.done_at <= now]:
                self._apply(job)
            keep = self.cfg.job_retention_seconds
            self.jobs = {
                i: j for i, j in self.jobs.items() if not j.applied or now - j.created <= keep
            }
            after = self.cfg.archive_after_seconds
            if after is not None:
                for record in self.tickets.values():
                    solved = record.data.get("status") in ("solved", "closed")
                    if solved and record.deleted_at is None and now - record.created_ts >= after:
                        record.archived = True
            return now

    def in_flight(self) -> list[Job]:
        """Jobs queued or running at the last tick."""
        return [j for j in self.jobs.values() if j.done_at > self.now]

    def render_job(self, job: Job) -> JsonDict:
        status, size = job.state(self.now), len(job.items)
        share = (self.now - job.working_at) / max(job.done_at - job.working_at, 1e-9)
        working = max(0, min(size - 1, int(size * share)))
        total: int | None = size
        # Recorded: a queued job shows its total, but progress (like results) is null.
        progress: int | None = {"queued": None, "completed": size}.get(status, working)
        if job.kind == PURGE:  # documented shape: results {"success": true}, no counts
            total = progress = None
        ended = status in ("completed", "failed")
        return {
            "id": job.id,
            "url": f"{self.api}/job_statuses/{job.id}.json",
            "job_type": job.kind,
            "status": status,
            "total": total,
            "progress": progress,
            "message": job.message if ended else None,
            "results": job.results if status == "completed" else None,
        }

    def start_job(self, kind: str, items: list[Any], archive: bool = False) -> JsonDict:
        flying, now = self.in_flight(), self.now
        if len(flying) >= self.cfg.max_jobs_in_flight:
            wait = max(1, math.ceil(min(j.done_at for j in flying) - now))
            ids = [j.id for j in flying]
            body = {"error": "TooManyJobs", "description": _TOO_MANY_JOBS, "current_job_ids": ids}
            raise ApiError(429, body, {"Retry-After": str(wait)})
        done_at = now + max(self.cfg.job_seconds, 0.0)
        job = Job(secrets.token_hex(16), kind, items, archive, now, done_at)
        self.jobs[job.id] = job
        return {"job_status": self.render_job(job)}

    def _apply(self, job: Job) -> None:
        job.applied, job.message = True, f"Completed at {iso_utc(self.now)}"
        if job.kind == IMPORT:
            job.results = [self._import_item(i, item, job) for i, item in enumerate(job.items)]
        elif job.kind == DESTROY and self.failing_deletions:
            self.failing_deletions -= 1
            job.failed, job.message = True, "Failed"
        elif job.kind == DESTROY:
            job.results = [self._destroy_item(ticket_id) for ticket_id in job.items]
        else:  # purge: permanently delete soft-deleted tickets; others are left alone
            job.message = None
            for ticket_id in job.items:
                gone = self.tickets.get(ticket_id)
                # An archived ticket is not in deleted_tickets, so its purge cannot go through
                # there (whether Zendesk does is unconfirmed): it stays deleted, unpurged.
                if gone is not None and gone.deleted_at is not None and not gone.archived:
                    del self.tickets[ticket_id]
                    self.purged.add(ticket_id)
            job.results = {"success": True}

    def _import_item(self, index: int, item: Any, job: Job) -> JsonDict:
        if problem := self.problem(item):
            return {"index": index, "error": "TicketCreateFailed", "details": problem}
        return {"index": index, "id": self.create_ticket(item, job.archive, job.id).data["id"]}

    def _destroy_item(self, ticket_id: int) -> JsonDict:
        found = self.tickets.get(ticket_id)
        row = {"id": ticket_id, "action": "delete", "success": found is not None}
        if ticket_id in self.undeletable:
            row.update(success=False, status=self.undeletable[ticket_id])
        elif found is None:
            row.update(status="NotFound", errors="Ticket not found")
        elif found.deleted_at is not None:
            row["status"] = "AlreadyDeleted"
        else:
            self.soft_delete(found, self.now)
            row["status"] = "Deleted"
        return row

    def problem(self, item: Any) -> str | None:
        """Zendesk's error details for an import item it refuses, else None: an invalid item,
        one naming a user the account does not have (its ``requester_id`` or a comment's
        ``author_id``), or one a test marked (``refused``)."""

        def unknown(user_id: Any) -> bool:
            live = isinstance(user_id, int) and self.users.get(user_id, {}).get("active")
            return user_id is not None and not live

        if problem := validate_ticket(item, self.cfg.strict_requester):
            return problem
        if unknown(item.get("requester_id")):
            return "Requester: is invalid"
        comments = item.get("comments") or [item.get("comment")]
        if any(isinstance(c, dict) and unknown(c.get("author_id")) for c in comments):
            return "Comment: Author is invalid"
        return self.refused.get(str(item.get("external_id")))

    # ---- tickets -------------------------------------------------------------------------------
    def create_ticket(self, item: JsonDict, archive: bool, job_id: str | None) -> TicketRecord:
        """A ticket from a valid import item, taking over its nested values (a parsed request
        body, or a job's items, which nothing reads after the job ran); nothing here changes
        them: comments and tags are new objects."""
        with self.lock:
            now = self.clock()
            ticket_id, stamp = self._next_ticket, iso_utc(now)
            self._next_ticket += 1
            data: JsonDict = dict(item)
            raw_comments = data.pop("comments", None) or [data.pop("comment")]
            data.pop("comment", None)
            requester = data.get("requester")
            author = data.get("requester_id") or self._user_id(requester)
            created = data.get("created_at") or stamp
            comments = []
            for raw in raw_comments:
                comment = {"public": True, "author_id": self.api_user_id, "created_at": created}
                comment.update(raw, id=self._next_comment, type="Comment", body=_comment_body(raw))
                self._next_comment += 1
                comments.append(comment)
            data.update(
                id=ticket_id,
                url=f"{self.api}/tickets/{ticket_id}.json",
                requester_id=author,
                submitter_id=data.get("submitter_id") or author,
                status=data.get("status") or "new",
                created_at=created,
                tags=list(data.get("tags") or []),
                comments=comments,
                description=comments[0]["body"],
                external_id=data.get("external_id"),
            )
            data.setdefault("updated_at", created)
            data.setdefault("via", {"channel": "api"})
            closed = archive and data["status"] == "closed"
            record = TicketRecord(data, closed, None, job_id, now)
            self.tickets[ticket_id] = record
            self.changed(record, now)
            return record

    def changed(self, record: TicketRecord, now: float) -> None:
        """The ticket was created, updated or deleted at ``now``: the export shows it again,
        and search's index takes the change in only after the lag."""
        record.changed_ts = now
        self.unindexed.append((now, record))

    def searchable(self) -> list[JsonDict]:
        """The tickets in search's index, as it holds them: each change is indexed once it is
        ``search_index_lag_seconds`` old (a ticket changed again since waits for its last
        change, so search never sees a state newer than the lag allows); a deleted one goes."""
        horizon = self.now - self.cfg.search_index_lag_seconds
        while self.unindexed and self.unindexed[0][0] <= horizon:
            at, record = self.unindexed.popleft()
            if record.changed_ts == at:
                record.indexed = None if record.deleted_at is not None else record.shown()
        return [r.indexed for r in self.tickets.values() if r.indexed is not None]

    def live(self, ticket_id: int) -> TicketRecord:
        """The ticket; a 404 when unknown or deleted."""
        record = self.tickets.get(ticket_id)
        if record is None or record.deleted_at is not None:
            raise not_found()
        return record

    def soft_delete(self, record: TicketRecord, now: float) -> None:
        """Into deleted_tickets; the export shows it as deleted."""
        record.deleted_at = iso_utc(now)
        self.changed(record, now)

    def add_email_ticket(
        self,
        requester_email: str,
        subject: str,
        *,
        cc_emails: tuple[str, ...] = (),
        submitter_email: str | None = None,
    ) -> int:
        """A ticket another channel created (an email to support), not snapzen: no
        external_id, ``via.channel`` email, CCs as ``collaborator_ids``; ``submitter_email``:
        someone who filed it for the requester (``submitter_id``). Returns its id."""
        with self.lock:
            item: JsonDict = {
                "subject": subject,
                "comment": {"body": f"{subject} (sent by email)"},
                "requester": {"email": requester_email},
                "collaborator_ids": [self._user_id({"email": e}) for e in cc_emails],
                "via": {"channel": "email"},
                "status": "open",
            }
            if submitter_email is not None:
                item["submitter_id"] = self._user_id({"email": submitter_email})
            return int(self.create_ticket(item, False, None).data["id"])

    # ---- users ---------------------------------------------------------------------------------
    def add_user(
        self,
        email: str | None,
        *,
        name: str | None = None,
        role: str = "end-user",
        created: float | None = None,
    ) -> int:
        """Create a user (tests register agents and admins this way); returns its id.
        ``created``: when, on the sandbox's clock (None: now); users/search finds it only
        ``search_index_lag_seconds`` after that (``-math.inf``: a user that was always there)."""
        with self.lock:
            user_id, self._next_user = self._next_user, self._next_user + 1
            user = {"id": user_id, "email": email, "name": name, "role": role, "active": True}
            self.users[user_id] = user
            self.user_created[user_id] = self.clock() if created is None else created
            if email is not None:
                self.user_by_email[email.lower()] = user_id
            return user_id

    def _user_id(self, requester: Any) -> int:
        """The requester's user, created on first sight (as a ticket import does)."""
        if not isinstance(requester, dict):
            return self.add_user(None)
        email, name = requester.get("email"), requester.get("name")
        email = email if isinstance(email, str) else None
        known = None if email is None else self.user_by_email.get(email.lower())
        return known or self.add_user(email, name=name if isinstance(name, str) else None)

    def search_users(self, email: str) -> list[JsonDict]:
        """Live users with exactly this email (case-insensitive), as the account holds them
        now (a ticket's ``requester:`` term: the ticket's own indexing already lags)."""
        with self.lock:
            user_id = self.user_by_email.get(email.strip().lower())
            return [] if user_id is None else [dict(self.users[user_id])]

    def indexed_users(self, email: str) -> list[JsonDict]:
        """What users/search finds for ``email``: the live users with it that search's index
        holds, i.e. created at least ``search_index_lag_seconds`` ago on the sandbox's clock
        (the same setting and clock as ticket search). A soft-deleted user leaves at once."""
        horizon = self.clock() - self.cfg.search_index_lag_seconds
        with self.lock:
            return [u for u in self.search_users(email) if self.user_created[u["id"]] <= horizon]

    # ---- endpoints: auth -----------------------------------------------------------------------
    def authorize(self, request: Request, name: str) -> None:
        """A 401 unless the caller holds the API token (until its retirement) or a live OAuth
        token (any caller may ask for one); a 403 when that token's scope does not cover
        endpoint ``name``."""
        auth, cfg = request.authorization, self.cfg
        if name == "oauth_token":
            return
        if auth is not None and auth.type == "basic":
            token = (f"{cfg.zendesk_email}/token", cfg.zendesk_token)
            if self.clock() >= API_TOKENS_DEACTIVATED or (auth.username, auth.password) != token:
                raise ApiError(401, {"error": "Couldn't authenticate you"})
            return
        bearer = auth.token if auth is not None and auth.type == "bearer" else None
        with self.lock:
            expiry, granted = self.tokens.get(bearer or "", (-math.inf, set()))
        if self.clock() >= expiry:
            raise ApiError(401, {"error": "Couldn't authenticate you"})
        access = "read" if request.method == "GET" else "write"
        resource = "users" if name in _USERS else "tickets"
        if name not in _UNSCOPED and not {access, f"{resource}:{access}"} & granted:
            raise error(403, "Forbidden", "You do not have access to this page (OAuth scope)")

    # ---- inspection ----------------------------------------------------------------------------
    def inspect_users(self) -> list[JsonDict]:
        with self.lock:
            purged = [{"id": i, "purged": True} for i in sorted(self.purged_users)]
            return [dict(u) for u in self.users.values()] + purged
