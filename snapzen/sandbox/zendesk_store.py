"""State of the fake Zendesk account: tickets, users, background jobs and OAuth tokens.

Jobs have no worker thread: a job's status is a pure function of the clock (queued, then working,
then completed after ``job_seconds``), and its effects are applied lazily, in creation order, by
``tick()`` at the start of every store operation. That keeps the emulator deterministic and free
of background threads while still giving clients a real asynchronous lifecycle to poll.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snapzen.sandbox.config import SandboxConfig, service_time
from snapzen.sandbox.validation import is_valid_email

JsonDict = dict[str, Any]
_STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
# Share of job_seconds spent "queued" before a job turns "working".
_QUEUED_FRACTION = 0.3


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

    def shown(self) -> JsonDict:
        """The ticket as Zendesk's API shows it: a Ticket object has no comments (they are
        at tickets/{id}/comments; the first one's body is the ``description``)."""
        return {key: value for key, value in self.data.items() if key != "comments"}


@dataclass
class Job:
    id: str
    kind: str  # "import" | "destroy" | "purge"
    job_type: str
    items: list[Any]
    archive: bool
    created: float
    working_at: float
    done_at: float
    applied: bool = False
    results: Any = None
    message: str | None = None
    failed: bool = False  # ended "failed", having done nothing


END_USER = "end-user"


@dataclass
class UserRecord:
    id: int
    email: str | None
    name: str | None
    role: str = END_USER
    deleted: bool = False  # soft-deleted: gone from search, still in deleted_users

    def render(self) -> JsonDict:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "active": not self.deleted,
        }


@dataclass
class _Users:
    by_email: dict[str, int] = field(default_factory=dict)  # live (not soft-deleted) users
    records: dict[int, UserRecord] = field(default_factory=dict)  # live and soft-deleted
    purged: set[int] = field(default_factory=set)
    next_id: int = 10_000_001


# Zendesk refuses a comment body over about 64 KB of UTF-8 ("depending on your encoding"),
# whatever its length in characters.
COMMENT_MAX_BYTES = 65_536


def validate_ticket(item: object, *, strict_requester: bool = False) -> str | None:
    """Return Zendesk's per-item error details for an invalid import item, else None.

    ``strict_requester``: refuse a requester without an email, as an account whose settings
    do not create users from a name alone does."""
    if not isinstance(item, dict):
        return "Ticket: must be an object"
    comments = item.get("comments")
    comment = item.get("comment")
    if isinstance(comments, list) and comments:
        candidates = comments
    elif isinstance(comment, dict):
        candidates = [comment]
    else:
        return "Description: cannot be blank"
    if not all(isinstance(c, dict) for c in candidates):
        return "Comments: must be objects"
    if not any(_comment_body(c) for c in candidates):
        return "Description: cannot be blank"
    if len(candidates) > 5000:
        return "Comments: a ticket can contain up to 5000 comments"
    if any(len(_comment_body(c).encode("utf-8")) > COMMENT_MAX_BYTES for c in candidates):
        return "Comment: body is too long"
    requester = item.get("requester")
    requester_id = item.get("requester_id")
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
    if status is not None and status not in _STATUSES:
        return f"Status: {status} is not valid"
    return None


def _comment_body(comment: JsonDict) -> str:
    for key in ("body", "value", "html_body"):
        value = comment.get(key)
        # Not blank: the same test as value.strip() (one whitespace predicate), without the
        # copy of a long body.
        if isinstance(value, str) and value and not value.isspace():
            return value
    return ""


class ZendeskStore:
    def __init__(self, cfg: SandboxConfig, clock: Callable[[], float] = service_time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.base_url = "http://127.0.0.1"  # set by the server once the port is known
        self.lock = threading.RLock()
        self.tickets: dict[int, TicketRecord] = {}
        self.purged: set[int] = set()
        self.jobs: dict[str, Job] = {}
        self.tokens: dict[str, float] = {}
        self._users = _Users()
        # external_id -> the error details an import item with it gets: a refusal for a reason
        # the emulator does not model (a control for tests; empty otherwise).
        self.refused: dict[str, str] = {}
        # Deletion controls of the same kind: ticket id -> the per-item status its deletion
        # gets ("Forbidden"), and how many of the next deletion jobs fail as a whole.
        self.undeletable: dict[int, str] = {}
        self.failing_deletions = 0
        self._next_ticket = 1
        self._next_comment = 900_000_001
        # The account the API credentials belong to: GET users/me answers with it, and a
        # comment imported without author_id is written by it (Zendesk's documented default).
        self.api_user_id = self.add_user(cfg.zendesk_email, name="Sandbox Admin", role="admin")

    # ---- clock-driven job progress -------------------------------------------------------------
    def tick(self) -> float:
        """Apply every job whose time has come; drop job statuses past retention. Returns now."""
        now = self.clock()
        with self.lock:
            for job in self.jobs.values():
                if not job.applied and job.done_at <= now:
                    self._apply(job, now)
            expired = [
                j.id
                for j in self.jobs.values()
                if j.applied and now - j.created > self.cfg.job_retention_seconds
            ]
            for job_id in expired:
                del self.jobs[job_id]
            self._archive_due(now)
        return now

    def _archive_due(self, now: float) -> None:
        """Archive live solved/closed tickets older than ``archive_after_seconds``."""
        after = self.cfg.archive_after_seconds
        if after is None:
            return
        for record in self.tickets.values():
            if (
                not record.archived
                and record.deleted_at is None
                and record.data.get("status") in ("solved", "closed")
                and now - record.created_ts >= after
            ):
                record.archived = True

    def in_flight(self, now: float) -> list[Job]:
        with self.lock:
            return [j for j in self.jobs.values() if j.done_at > now]

    def job_state(self, job: Job, now: float) -> str:
        if now < job.working_at:
            return "queued"
        if now < job.done_at:
            return "working"
        return "failed" if job.failed else "completed"

    def render_job(self, job: Job, now: float) -> JsonDict:
        status = self.job_state(job, now)
        total: int | None = len(job.items)
        share = (now - job.working_at) / max(job.done_at - job.working_at, 1e-9)
        working = max(0, min(len(job.items) - 1, int(len(job.items) * share)))
        progress: int | None = {"queued": 0, "completed": len(job.items)}.get(status, working)
        if job.kind == "purge":
            # Documented shape for permanent deletion: results {"success": true}, no counts.
            total = progress = None
        return {
            "id": job.id,
            "url": f"{self.base_url}/zendesk/api/v2/job_statuses/{job.id}.json",
            "job_type": job.job_type,
            "status": status,
            "total": total,
            "progress": progress,
            "message": job.message if status in ("completed", "failed") else None,
            "results": job.results if status == "completed" else None,
        }

    def add_job(self, kind: str, job_type: str, items: list[Any], archive: bool = False) -> Job:
        now = self.clock()
        seconds = max(self.cfg.job_seconds, 0.0)
        job = Job(
            id=secrets.token_hex(16),
            kind=kind,
            job_type=job_type,
            # Not copied: callers hand over a freshly parsed request body, which the job then
            # owns (a deep copy per import was the emulator's largest cost per ticket).
            items=items,
            archive=archive,
            created=now,
            working_at=now + seconds * _QUEUED_FRACTION,
            done_at=now + seconds,
        )
        with self.lock:
            self.jobs[job.id] = job
        return job

    def _apply(self, job: Job, now: float) -> None:
        results: Any
        if job.kind == "import":
            results = []
            for index, item in enumerate(job.items):
                problem = validate_ticket(item, strict_requester=self.cfg.strict_requester)
                if not problem and isinstance(item, dict):
                    problem = self.refused.get(str(item.get("external_id")))
                if problem:
                    results.append(
                        {"index": index, "error": "TicketCreateFailed", "details": problem}
                    )
                else:
                    record = self.create_ticket(item, job.archive, job.id)
                    results.append({"index": index, "id": record.data["id"]})
            job.message = f"Completed at {iso_utc(now)}"
        elif job.kind == "destroy" and self.failing_deletions:
            self.failing_deletions -= 1
            job.failed, results = True, None
            job.message = "Failed"
        elif job.kind == "destroy":
            results = []
            for ticket_id in job.items:
                found = self.tickets.get(ticket_id)
                row = {"id": ticket_id, "action": "delete", "success": found is not None}
                if ticket_id in self.undeletable:
                    row.update(success=False, status=self.undeletable[ticket_id])
                elif found is None:
                    row.update(status="NotFound", errors="Ticket not found")
                elif found.deleted_at is not None:
                    row["status"] = "AlreadyDeleted"
                else:
                    self.soft_delete(found, now)
                    row["status"] = "Deleted"
                results.append(row)
            job.message = f"Completed at {iso_utc(now)}"
        else:  # purge: permanently delete soft-deleted tickets; others are left alone
            for ticket_id in job.items:
                gone = self.tickets.get(ticket_id)
                # An archived ticket is not in deleted_tickets, so its purge cannot go through
                # there (whether Zendesk does is unconfirmed): it stays deleted, unpurged.
                if gone is not None and gone.deleted_at is not None and not gone.archived:
                    del self.tickets[ticket_id]
                    self.purged.add(ticket_id)
            results = {"success": True}
        job.results = results
        job.applied = True

    # ---- users ---------------------------------------------------------------------------------
    def _user_id(self, requester: JsonDict | None) -> int:
        """The requester's user, created on first sight (as a ticket import does)."""
        email, name = (requester.get("email"), requester.get("name")) if requester else (None, None)
        email = email if isinstance(email, str) else None
        with self.lock:
            known = None if email is None else self._users.by_email.get(email.lower())
            return known or self.add_user(email, name=name if isinstance(name, str) else None)

    def add_user(self, email: str | None, *, name: str | None = None, role: str = END_USER) -> int:
        """Create a user (tests register agents/admins this way); returns its id."""
        with self.lock:
            users = self._users
            user_id = users.next_id
            users.next_id += 1
            users.records[user_id] = UserRecord(user_id, email, name, role)
            if email is not None:
                users.by_email[email.lower()] = user_id
            return user_id

    def user_record(self, user_id: int) -> JsonDict | None:
        """One live (not soft-deleted) user as GET users/{id} shows it; None if there is none."""
        with self.lock:
            user = self._users.records.get(user_id)
            if user is None or user.deleted:
                return None
            return {
                **user.render(),
                "url": f"{self.base_url}/zendesk/api/v2/users/{user_id}.json",
                "verified": True,
                "suspended": False,
            }

    def show_users(self, user_ids: list[int]) -> list[JsonDict]:
        """The users with these ids that were not purged, as users/show_many shows them."""
        with self.lock:
            records = self._users.records  # a purged user's record is gone
            return [records[i].render() for i in user_ids if i in records]

    def search_users(self, email: str) -> list[JsonDict]:
        """Live users with exactly this email (case-insensitive); soft-deleted ones are hidden."""
        with self.lock:
            user_id = self._users.by_email.get(email.strip().lower())
            return [] if user_id is None else [self._users.records[user_id].render()]

    def soft_delete_user(self, user_id: int) -> JsonDict | None:
        """Soft delete; None when unknown or already deleted (the API answers 404)."""
        with self.lock:
            record = self._users.records.get(user_id)
            if record is None or record.deleted:
                return None
            record.deleted = True
            if record.email is not None:
                self._users.by_email.pop(record.email.lower(), None)
            return record.render()

    def purge_user(self, user_id: int) -> bool:
        """Permanently delete a soft-deleted user; False (404) unless soft-deleted first."""
        with self.lock:
            record = self._users.records.get(user_id)
            if record is None or not record.deleted:
                return False
            del self._users.records[user_id]
            self._users.purged.add(user_id)
            return True

    def user_tickets(self, user_id: int, how: str) -> list[JsonDict]:
        """Tickets naming the user, as ``users/{id}/tickets/requested|ccd`` list them: live
        and archived ones (soft-deleted tickets are left out, as Zendesk does)."""
        key = "requester_id" if how == "requested" else "collaborator_ids"
        with self.lock:
            return [
                r.shown()
                for r in self.tickets.values()
                if r.deleted_at is None
                and user_id in (v if isinstance(v := r.data.get(key), list) else [v])
            ]

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
            ccs = [self._user_id({"email": e}) for e in cc_emails]
            item: JsonDict = {
                "subject": subject,
                "comment": {"body": f"{subject} (sent by email)"},
                "requester": {"email": requester_email},
                "collaborator_ids": ccs,
                "via": {"channel": "email"},
                "status": "open",
            }
            if submitter_email is not None:
                item["submitter_id"] = self._user_id({"email": submitter_email})
            return int(self.create_ticket(item, False, None).data["id"])

    def inspect_users(self) -> list[JsonDict]:
        with self.lock:
            live = [r.render() for r in self._users.records.values()]
            purged = [{"id": i, "purged": True} for i in sorted(self._users.purged)]
            return live + purged

    # ---- tickets -------------------------------------------------------------------------------

    def create_ticket(self, item: JsonDict, archive: bool, job_id: str | None) -> TicketRecord:
        """Create a ticket from an already validated import item (caller holds the lock).

        The ticket takes over ``item``'s nested values: callers hand over a freshly parsed
        request body (or a job's items, which nothing reads after the job is applied), and
        nothing here mutates them: comments and tags are new objects. (A deep copy here was
        the emulator's largest cost per imported ticket.)"""
        now_iso = iso_utc(self.clock())
        with self.lock:
            ticket_id = self._next_ticket
            self._next_ticket += 1
            data: JsonDict = dict(item)
            raw_comments = data.pop("comments", None) or [data.pop("comment")]
            data.pop("comment", None)
            requester = data.get("requester")
            author = data.get("requester_id") or self._user_id(
                requester if isinstance(requester, dict) else None
            )
            comments = []
            for raw in raw_comments:
                comment = dict(raw)
                comment.setdefault("public", True)
                comment.setdefault("author_id", self.api_user_id)
                comment.setdefault("created_at", data.get("created_at") or now_iso)
                comment["id"] = self._next_comment
                comment["type"] = "Comment"
                comment["body"] = _comment_body(raw)
                self._next_comment += 1
                comments.append(comment)
            data.update(
                id=ticket_id,
                url=f"{self.base_url}/zendesk/api/v2/tickets/{ticket_id}.json",
                requester_id=data.get("requester_id") or author,
                submitter_id=data.get("submitter_id") or author,
                status=data.get("status") or "new",
                created_at=data.get("created_at") or now_iso,
                tags=list(data.get("tags") or []),
                comments=comments,
                description=comments[0]["body"],
                external_id=data.get("external_id"),
            )
            data.setdefault("updated_at", data["created_at"])
            data.setdefault("via", {"channel": "api"})
            record = TicketRecord(
                data=data,
                archived=archive and data["status"] == "closed",
                job_id=job_id,
                created_ts=self.clock(),
            )
            record.changed_ts = record.created_ts
            self.tickets[ticket_id] = record
            return record

    def live(self, ticket_id: int) -> TicketRecord | None:
        """The ticket unless unknown or deleted (caller holds the lock)."""
        record = self.tickets.get(ticket_id)
        return None if record is None or record.deleted_at is not None else record

    def soft_delete(self, record: TicketRecord, now: float) -> None:
        """Into deleted_tickets (caller holds the lock); the export shows it as deleted."""
        record.deleted_at = iso_utc(now)
        record.changed_ts = now

    def update_ticket(self, ticket_id: int, fields: JsonDict) -> TicketRecord | str | None:
        """``PUT tickets/{id}``: the ticket, None when there is no live one, or why Zendesk
        refuses the update (a closed ticket cannot be updated)."""
        now = self.tick()
        with self.lock:
            record = self.live(ticket_id)
            if record is None:
                return None
            if record.archived or record.data.get("status") == "closed":
                return "Status: closed prevents ticket update"
            status = fields.get("status", record.data.get("status"))
            if status not in _STATUSES:
                return f"Status: {status} is not valid"
            for name in ("external_id", "subject", "status", "tags"):
                if name in fields:
                    record.data[name] = fields[name]
            record.data["updated_at"] = iso_utc(now)
            record.changed_ts = now
            return record

    def new_token(self) -> str:
        token = secrets.token_hex(24)
        with self.lock:
            self.tokens[token] = self.clock() + self.cfg.oauth_token_ttl_seconds
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and self.clock() < expiry

    # ---- inspection ----------------------------------------------------------------------------
    def inspect_tickets(self) -> list[JsonDict]:
        self.tick()
        with self.lock:
            return [
                {
                    **copy.deepcopy(r.data),
                    "archived": r.archived,
                    "deleted": r.deleted_at is not None,
                    "deleted_at": r.deleted_at,
                    "job_id": r.job_id,
                }
                for r in self.tickets.values()
            ]

    def stats(self) -> JsonDict:
        now = self.tick()
        with self.lock:
            live = [r for r in self.tickets.values() if r.deleted_at is None]
            by_ext = Counter(
                r.data.get("external_id") for r in live if r.data.get("external_id") is not None
            )
            jobs_by_status = Counter(self.job_state(j, now) for j in self.jobs.values())
            jobs_by_type = Counter(j.job_type for j in self.jobs.values())
            return {
                "tickets": {
                    "total": len(live),
                    "by_status": dict(Counter(str(r.data.get("status")) for r in live)),
                    "archived": sum(1 for r in live if r.archived),
                },
                "tickets_count": len(live),
                "deleted_tickets_count": len(self.tickets) - len(live),
                "purged_tickets_count": len(self.purged),
                # The one number an end-to-end test cares most about: it must stay empty.
                "duplicate_external_ids": sorted(k for k, n in by_ext.items() if n > 1),
                "jobs": {
                    "total": len(self.jobs),
                    "by_status": dict(jobs_by_status),
                    "by_type": dict(jobs_by_type),
                    "in_flight": len(self.in_flight(now)),
                },
            }
