"""Fake Zendesk ticket-import API: auth, imports, job statuses, lookup and deletion endpoints,
and the user search and deletion an Art. 17 erasure needs."""

from __future__ import annotations

import math
from typing import Any

from werkzeug.wrappers import Request, Response

from snapzen.sandbox import zendesk_search
from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.responses import (
    error,
    json_response,
    listing,
    loads,
    not_found,
    shown_or_404,
)
from snapzen.sandbox.zendesk_store import JsonDict, ZendeskStore, validate_ticket

MAX_BATCH = 100
_TOO_MANY_JOBS = "Too many TicketImportJob jobs are currently queued or running. Try again later."


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _json_body(request: Request) -> Any:
    try:
        return loads(request.get_data())
    except ValueError:
        return None


def _ticket_body(request: Request) -> JsonDict | Response:
    body = _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
        return error(400, "InvalidJSON", 'body must be {"ticket": {...}}')
    ticket: JsonDict = body["ticket"]
    return ticket


def _invalid(problem: str) -> Response:
    details = {"base": [{"description": problem, "error": "InvalidValue"}]}
    body = {"error": "RecordInvalid", "description": "Record validation errors"}
    return json_response({**body, "details": details}, 422)


def _parse_ids(request: Request) -> list[int] | Response:
    raw = request.args.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        return error(400, "InvalidValue", "ids must be a comma-separated list of integers")
    if not ids:
        return error(400, "InvalidValue", "ids is required")
    if len(ids) > MAX_BATCH:
        return error(400, "TooManyValues", f"at most {MAX_BATCH} ids per request, got {len(ids)}")
    return ids


class ZendeskApi:
    def __init__(self, cfg: SandboxConfig, store: ZendeskStore) -> None:
        self.cfg = cfg
        self.store = store

    # ---- auth ----------------------------------------------------------------------------------
    def authenticated(self, request: Request) -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            user = f"{self.cfg.zendesk_email}/token"
            return auth.username == user and auth.password == self.cfg.zendesk_token
        if auth is not None and auth.type == "bearer" and auth.token:
            return self.store.token_valid(auth.token)
        return False

    def oauth_token(self, request: Request) -> Response:
        body = _json_body(request) if request.is_json else None
        params: dict[str, Any] = body if isinstance(body, dict) else dict(request.form.items())
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        auth = request.authorization
        if auth is not None and auth.type == "basic" and not client_id:
            client_id, client_secret = auth.username, auth.password
        if params.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if client_id != self.cfg.oauth_client_id or client_secret != self.cfg.oauth_client_secret:
            return json_response({"error": "invalid_client"}, 401)
        scope = params.get("scope") or "read write"
        if isinstance(scope, list):
            scope = " ".join(str(s) for s in scope)
        return json_response(
            {
                "access_token": self.store.new_token(),
                "token_type": "bearer",
                "expires_in": self.cfg.oauth_token_ttl_seconds,
                "scope": str(scope),
            }
        )

    # ---- jobs ----------------------------------------------------------------------------------
    def _start_job(
        self, kind: str, job_type: str, items: list[Any], archive: bool = False
    ) -> Response:
        # Check and enqueue under one lock so concurrent clients cannot overshoot the cap.
        with self.store.lock:
            now = self.store.tick()
            flying = self.store.in_flight(now)
            if len(flying) >= self.cfg.max_jobs_in_flight:
                wait = max(1, math.ceil(min(j.done_at for j in flying) - now))
                ids = [j.id for j in flying]
                body = {
                    "error": "TooManyJobs",
                    "description": _TOO_MANY_JOBS,
                    "current_job_ids": ids,
                }
                return json_response(body, 429, {"Retry-After": str(wait)})
            job = self.store.add_job(kind, job_type, items, archive)
            return json_response({"job_status": self.store.render_job(job, now)})

    def job_status(self, request: Request, job_id: str) -> Response:
        now = self.store.tick()
        with self.store.lock:
            job = self.store.jobs.get(job_id)
            return shown_or_404("job_status", job and self.store.render_job(job, now))

    def job_statuses_show_many(self, request: Request) -> Response:
        ids = [i for i in request.args.get("ids", "").split(",") if i.strip()]
        now = self.store.tick()
        with self.store.lock:
            found = [self.store.jobs[i.strip()] for i in ids if i.strip() in self.store.jobs]
            return json_response({"job_statuses": [self.store.render_job(j, now) for j in found]})

    def job_statuses_list(self, request: Request) -> Response:
        now = self.store.tick()
        with self.store.lock:
            # Zendesk sorts by completion, then creation, newest first: unfinished jobs (no
            # completion yet) lead, which is what lets a client see "none of ours is queued".
            jobs = sorted(
                self.store.jobs.values(),
                key=lambda j: (self.store.job_state(j, now) == "completed", -j.created),
            )[:100]
            return json_response(
                {
                    "job_statuses": [self.store.render_job(j, now) for j in jobs],
                    "next_page": None,
                    "previous_page": None,
                }
            )

    # ---- imports -------------------------------------------------------------------------------
    def import_ticket(self, request: Request) -> Response:
        item = _ticket_body(request)
        if isinstance(item, Response):
            return item
        problem = validate_ticket(item, strict_requester=self.cfg.strict_requester)
        if problem:
            return _invalid(problem)
        archive = _truthy(request.args.get("archive_immediately"))
        record = self.store.create_ticket(item, archive, None)
        return json_response({"ticket": record.shown()}, 201)

    def import_create_many(self, request: Request) -> Response:
        body = _json_body(request)
        tickets = body.get("tickets") if isinstance(body, dict) else None
        if not isinstance(tickets, list) or not tickets:
            return error(400, "InvalidJSON", 'body must be {"tickets": [...]} with 1-100 items')
        if len(tickets) > MAX_BATCH:
            return error(
                400,
                "TooManyValues",
                f"create_many accepts at most {MAX_BATCH} tickets per request, got {len(tickets)}",
            )
        archive = _truthy(request.args.get("archive_immediately"))
        return self._start_job("import", "bulk_import_tickets", tickets, archive)

    # ---- tickets -------------------------------------------------------------------------------
    def tickets_list(self, request: Request) -> Response:
        external_id = request.args.get("external_id")
        with self.store.lock:
            # Archived and deleted tickets are invisible to this endpoint (documented), which is
            # what makes a dedup lookup after archive_immediately give a false negative.
            visible = [
                r.shown()
                for r in self.store.tickets.values()
                if r.deleted_at is None and not r.archived
            ]
            if external_id is not None:
                return listing(
                    "tickets", [t for t in visible if t.get("external_id") == external_id]
                )
            try:
                page = max(1, int(request.args.get("page", "1")))
                per_page = min(MAX_BATCH, max(1, int(request.args.get("per_page", "100"))))
            except ValueError:
                return error(400, "InvalidValue", "page and per_page must be integers")
            chunk = visible[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(visible)
            base = f"{self.store.base_url}/zendesk/api/v2/tickets.json?per_page={per_page}"
            return listing(
                "tickets",
                chunk,
                len(visible),
                next_page=f"{base}&page={page + 1}" if more else None,
                previous_page=f"{base}&page={page - 1}" if page > 1 else None,
            )

    def tickets_show_many(self, request: Request) -> Response:
        # Live and archived tickets; unknown and deleted ids are left out without an error.
        ids = _parse_ids(request)
        if isinstance(ids, Response):
            return ids
        with self.store.lock:
            found = [
                self.store.tickets[i].shown()
                for i in dict.fromkeys(ids)
                if i in self.store.tickets and self.store.tickets[i].deleted_at is None
            ]
        return listing("tickets", found)

    def ticket_show(self, request: Request, ticket_id: int) -> Response:
        with self.store.lock:
            record = self.store.live(ticket_id)
            return shown_or_404("ticket", record and record.shown())

    def ticket_comments(self, request: Request, ticket_id: int) -> Response:
        return zendesk_search.comments(self.store, ticket_id)

    def search(self, request: Request) -> Response:
        return zendesk_search.search(self.store, request)

    def search_count(self, request: Request) -> Response:
        return zendesk_search.count(self.store, request)

    def ticket_delete(self, request: Request, ticket_id: int) -> Response:
        now = self.store.tick()
        with self.store.lock:
            record = self.store.live(ticket_id)
            if record is None:
                return not_found()
            self.store.soft_delete(record, now)
        return Response(status=204)

    def ticket_update(self, request: Request, ticket_id: int) -> Response:
        """``PUT tickets/{id}`` with ``{"ticket": {...}}``: what an agent or a script may
        change here (external_id, subject, status, tags); a closed ticket is refused."""
        fields = _ticket_body(request)
        if isinstance(fields, Response):
            return fields
        done = self.store.update_ticket(ticket_id, fields)
        if done is None:
            return not_found()
        if isinstance(done, str):
            return _invalid(done)
        return json_response({"ticket": done.shown(), "audit": {"ticket_id": ticket_id}})

    def tickets_destroy_many(self, request: Request) -> Response:
        ids = _parse_ids(request)
        if isinstance(ids, Response):
            return ids
        return self._start_job("destroy", "bulk_delete_tickets", ids)

    def deleted_tickets_list(self, request: Request) -> Response:
        with self.store.lock:
            rows = [
                {
                    "id": r.data["id"],
                    "subject": r.data.get("subject"),
                    "description": r.data.get("description"),
                    "deleted_at": r.deleted_at,
                    "previous_state": r.data.get("status"),
                    "actor": {"id": 1, "name": self.cfg.zendesk_email},
                }
                for r in self.store.tickets.values()
                # "all deleted (and not yet archived) tickets": archived ones never show here
                if r.deleted_at is not None and not r.archived
            ]
        return listing("deleted_tickets", rows)

    def deleted_tickets_destroy_many(self, request: Request) -> Response:
        ids = _parse_ids(request)
        if isinstance(ids, Response):
            return ids
        return self._start_job("purge", "bulk_permanent_delete_tickets", ids)

    # ---- users ---------------------------------------------------------------------------------
    def users_me(self, request: Request) -> Response:
        # The authenticated user; the caller checked the credentials (a 401 otherwise).
        return shown_or_404("user", self.store.user_record(self.store.api_user_id))

    def users_search(self, request: Request) -> Response:
        # Real Search Users also matches names, notes and partial values; exact email is the
        # subset snapzen relies on (it filters for the exact address itself anyway).
        query = (request.args.get("query") or "").strip()
        if not query:
            return error(400, "InvalidValue", "query is required")
        return listing("users", self.store.search_users(query))

    def user_tickets_requested(self, request: Request, user_id: int) -> Response:
        return self._user_tickets(user_id, "requested")

    def user_tickets_ccd(self, request: Request, user_id: int) -> Response:
        return self._user_tickets(user_id, "ccd")

    def _user_tickets(self, user_id: int, how: str) -> Response:
        # GET users/{id}/tickets/requested|ccd: one page (the sandbox has few tickets).
        if self.store.user_record(user_id) is None:
            return not_found()
        return listing("tickets", self.store.user_tickets(user_id, how))

    def user_show(self, request: Request, user_id: int) -> Response:
        return shown_or_404("user", self.store.user_record(user_id))

    def users_show_many(self, request: Request) -> Response:
        # Live and soft-deleted users alike, as Zendesk's show_many; unknown ids are left out.
        ids = _parse_ids(request)
        if isinstance(ids, Response):
            return ids
        return json_response({"users": self.store.show_users(ids)})

    def user_delete(self, request: Request, user_id: int) -> Response:
        return shown_or_404("user", self.store.soft_delete_user(user_id))

    def deleted_user_delete(self, request: Request, user_id: int) -> Response:
        if not self.store.purge_user(user_id):
            return not_found()
        return json_response(
            {"deleted_user": {"id": user_id, "name": "Permanently Deleted User", "email": None}}
        )
