"""The fake Zendesk's endpoints, each a function of the account (``Zendesk``) and the request,
called by the app under the account's lock; a handler returns the JSON (or a Response) or
raises ``ApiError``.

Tickets: imports (one, or up to 100 by a job), job statuses, List Tickets (the ``external_id``
lookup), show and show_many, comments, updates, deletion and permanent deletion by jobs.

Users, what an Art. 17 erasure needs: find a person by email (users/search, which finds a new
user only ``search_index_lag_seconds`` after it was created, as ticket search does), list their
tickets, soft-delete them (``active`` false, gone from search, still shown by id in show_many)
and then delete them permanently.

Search is the one way to find archived tickets besides their id, so the sandbox supports the
subset snapzen uses: ``type:ticket`` with ``tags:X`` (or ``tag:X``), ``requester:EMAIL``,
``submitter:ID``, ``external_id:X`` (``*`` at the end for a prefix) and ``created``/``updated``
compared (``>``, ``>=``, ``<``, ``<=``) with a date, ANDed; anything else is a 400. Deleted
tickets are not found; archived ones are. Search sees the account as its index holds it:
every change (a new ticket, an update, a deletion) ``search_index_lag_seconds`` late. Search
stops at 1,000 results (a 422 past them); the export has no cap.

The incremental export (``?start_time=`` at least a minute ago, then ``?cursor=``) hands out
every ticket changed since, archived and deleted ones too (deleted with status ``deleted``), in
the order they last changed, so an update or a deletion shows a ticket again, later. The search
export allows 100 requests a minute, the incremental export 10: budgets of their own on top of
the account's (``SandboxApp.budgets``).
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.responses import (
    MAX_BATCH,
    ApiError,
    JsonDict,
    body_value,
    decode_cursor,
    encode_cursor,
    error,
    ids_arg,
    int_arg,
    invalid,
    json_response,
    listing,
    loads,
    not_found,
    record_invalid,
)
from snapzen.sandbox.zendesk import DESTROY, IMPORT, PURGE, STATUSES, TicketRecord, Zendesk, iso_utc

# ---- tickets


def oauth_token(zd: Zendesk, request: Request) -> JsonDict:
    try:
        body = loads(request.get_data()) if request.is_json else None
    except ValueError:
        body = None
    params: JsonDict = body if isinstance(body, dict) else dict(request.form.items())
    client = params.get("client_id"), params.get("client_secret")
    auth = request.authorization
    if auth is not None and auth.type == "basic" and not client[0]:
        client = auth.username, auth.password
    if params.get("grant_type") != "client_credentials":
        raise ApiError(400, {"error": "unsupported_grant_type"})
    if client != (zd.cfg.oauth_client_id, zd.cfg.oauth_client_secret):
        raise ApiError(401, {"error": "invalid_client"})
    scope = params.get("scope") or "read write"
    scope = " ".join(map(str, scope)) if isinstance(scope, list) else str(scope)
    token, ttl = secrets.token_hex(24), zd.cfg.oauth_token_ttl_seconds
    zd.tokens[token] = zd.clock() + ttl, set(scope.split())
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl, "scope": scope}


def _archive(request: Request) -> bool:
    return request.args.get("archive_immediately", "").lower() in ("1", "true", "yes", "on")


def import_ticket(zd: Zendesk, request: Request) -> Response:
    item = body_value(request, "ticket", dict)
    if problem := zd.problem(item):
        raise record_invalid(problem)
    return json_response({"ticket": zd.create_ticket(item, _archive(request), None).shown()}, 201)


def import_create_many(zd: Zendesk, request: Request) -> JsonDict:
    tickets = body_value(request, "tickets", list)
    if not tickets:
        raise error(400, "InvalidJSON", 'body must be {"tickets": [...]} with 1-100 items')
    if len(tickets) > MAX_BATCH:
        got = f"create_many accepts at most {MAX_BATCH} tickets per request, got {len(tickets)}"
        raise error(400, "TooManyValues", got)
    return zd.start_job(IMPORT, tickets, _archive(request))


def job_status(zd: Zendesk, request: Request, job_id: str) -> JsonDict:
    if job_id not in zd.jobs:
        raise not_found()
    return {"job_status": zd.render_job(zd.jobs[job_id])}


def job_statuses_show_many(zd: Zendesk, request: Request) -> JsonDict:
    ids = [i.strip() for i in request.args.get("ids", "").split(",")]
    return {"job_statuses": [zd.render_job(zd.jobs[i]) for i in ids if i in zd.jobs]}


def job_statuses_list(zd: Zendesk, request: Request) -> JsonDict:
    # Zendesk sorts by completion, then creation, newest first: unfinished jobs (no
    # completion yet) lead, which is what lets a client see "none of ours is queued".
    order = sorted(zd.jobs.values(), key=lambda j: (j.state(zd.now) == "completed", -j.created))
    return listing("job_statuses", [zd.render_job(j) for j in order[:100]])


def tickets_list(zd: Zendesk, request: Request) -> JsonDict:
    # Archived and deleted tickets are invisible to this endpoint (documented), which is
    # what makes a dedup lookup after archive_immediately give a false negative.
    external_id = request.args.get("external_id")
    visible = [
        r.shown()
        for r in zd.tickets.values()
        if r.deleted_at is None
        and not r.archived
        and (external_id is None or r.data.get("external_id") == external_id)
    ]
    if external_id is not None:
        return listing("tickets", visible)
    per_page = min(MAX_BATCH, int_arg(request, "per_page", 100))
    url = f"{zd.api}/tickets.json?per_page={per_page}"
    return _paged("tickets", visible, int_arg(request, "page", 1), per_page, url)


def _paged(key: str, rows: list[JsonDict], page: int, per_page: int, url: str) -> JsonDict:
    """Page ``page`` (from 1) of ``rows``, with Zendesk's links to the pages beside it."""
    more = page * per_page < len(rows)
    return listing(
        key,
        rows[(page - 1) * per_page : page * per_page],
        len(rows),
        next_page=f"{url}&page={page + 1}" if more else None,
        previous_page=f"{url}&page={page - 1}" if page > 1 else None,
    )


def tickets_show_many(zd: Zendesk, request: Request) -> JsonDict:
    # Live and archived tickets; unknown and deleted ids are left out without an error.
    records = (zd.tickets.get(i) for i in dict.fromkeys(ids_arg(request)))
    return listing("tickets", [r.shown() for r in records if r and r.deleted_at is None])


def ticket_show(zd: Zendesk, request: Request, ticket_id: int) -> JsonDict:
    return {"ticket": zd.live(ticket_id).shown()}


def ticket_comments(zd: Zendesk, request: Request, ticket_id: int) -> JsonDict:
    """Readable for archived tickets too, a 404 once deleted."""
    return listing("comments", [dict(c) for c in zd.live(ticket_id).data["comments"]])


def ticket_update(zd: Zendesk, request: Request, ticket_id: int) -> JsonDict:
    """``PUT tickets/{id}`` with ``{"ticket": {...}}``: what an agent or a script may
    change here (external_id, subject, status, tags); a closed ticket is refused."""
    fields, record = body_value(request, "ticket", dict), zd.live(ticket_id)
    if record.archived or record.data.get("status") == "closed":
        raise record_invalid("Status: closed prevents ticket update")
    status = fields.get("status", record.data.get("status"))
    if status not in STATUSES:
        raise record_invalid(f"Status: {status} is not valid")
    for name in {"external_id", "subject", "status", "tags"} & fields.keys():
        record.data[name] = fields[name]
    record.data["updated_at"] = iso_utc(zd.now)
    zd.changed(record, zd.now)
    return {"ticket": record.shown(), "audit": {"ticket_id": ticket_id}}


def ticket_delete(zd: Zendesk, request: Request, ticket_id: int) -> Response:
    zd.soft_delete(zd.live(ticket_id), zd.now)
    return Response(status=204)


def tickets_destroy_many(zd: Zendesk, request: Request) -> JsonDict:
    return zd.start_job(DESTROY, ids_arg(request))


def deleted_tickets_list(zd: Zendesk, request: Request) -> JsonDict:
    actor = {"id": 1, "name": zd.cfg.zendesk_email}
    rows = [
        {
            "id": r.data["id"],
            "subject": r.data.get("subject"),
            "description": r.data.get("description"),
            "deleted_at": r.deleted_at,
            "previous_state": r.data.get("status"),
            "actor": actor,
        }
        for r in zd.tickets.values()
        # "all deleted (and not yet archived) tickets": archived ones never show here
        if r.deleted_at is not None and not r.archived
    ]
    return listing("deleted_tickets", rows)


def deleted_tickets_destroy_many(zd: Zendesk, request: Request) -> JsonDict:
    return zd.start_job(PURGE, ids_arg(request))


# ---- users


def _live(zd: Zendesk, user_id: int) -> JsonDict:
    user = zd.users.get(user_id)
    if user is None or not user["active"]:
        raise not_found()
    return user


def user_show(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    url = f"{zd.api}/users/{user_id}.json"
    return {"user": {**_live(zd, user_id), "url": url, "verified": True, "suspended": False}}


def users_me(zd: Zendesk, request: Request) -> JsonDict:
    return user_show(zd, request, zd.api_user_id)  # the app checked the caller's credentials


def users_search(zd: Zendesk, request: Request) -> JsonDict:
    # Real Search Users also matches names, notes and partial values; exact email is the
    # subset snapzen relies on (it filters for the exact address itself anyway).
    query = (request.args.get("query") or "").strip()
    if not query:
        raise invalid("query is required")
    return listing("users", zd.indexed_users(query))


def users_show_many(zd: Zendesk, request: Request) -> JsonDict:
    # Live and soft-deleted users alike, as Zendesk's show_many; unknown ids are left out.
    return {"users": [dict(zd.users[i]) for i in ids_arg(request) if i in zd.users]}


def user_tickets_requested(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    return _tickets(zd, user_id, "requester_id")


def user_tickets_ccd(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    return _tickets(zd, user_id, "collaborator_ids")


def _tickets(zd: Zendesk, user_id: int, key: str) -> JsonDict:
    """Live and archived tickets naming the user, one page (soft-deleted ones left out)."""
    _live(zd, user_id)
    named = []
    for record in zd.tickets.values():
        value = record.data.get(key)
        if record.deleted_at is None and user_id in (value if isinstance(value, list) else [value]):
            named.append(record.shown())
    return listing("tickets", named)


def user_delete(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    user = _live(zd, user_id)
    user["active"] = False
    if user["email"] is not None:
        zd.user_by_email.pop(user["email"].lower(), None)
    return {"user": dict(user)}


def deleted_user_delete(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    """Permanent deletion: a 404 unless the user was soft-deleted first."""
    if zd.users.get(user_id, {"active": True})["active"]:
        raise not_found()
    del zd.users[user_id]
    zd.purged_users.add(user_id)
    return {"deleted_user": {"id": user_id, "name": "Permanently Deleted User", "email": None}}


# ---- search and the bulk exports

PER_PAGE = 100
MAX_RESULTS = 1000
SEARCH_PAGE_MAX = 1000
_PART = re.compile(r'(\w+)(:|>=|<=|>|<)("[^"]*"|\S+)|(\S+)')
_EQUALS = ("type", "tags", "tag", "requester", "submitter", "external_id")
_COMPARES = ("created", "updated")
Term = tuple[str, str, str]


def _terms(request: Request) -> list[Term]:
    """The query's terms (``type:ticket`` checked and left out); a 400 naming what the sandbox
    does not support."""
    query = request.args.get("query") or ""
    if not query.strip():
        raise invalid("query is required")
    terms: list[Term] = []
    for match in _PART.finditer(query):
        name, op, raw, free = match.groups()
        if free is not None or name not in (_EQUALS if op == ":" else _COMPARES):
            raise invalid(f"sandbox search does not support {match[0]!r}")
        if name == "type" and raw.strip('"') != "ticket":
            raise invalid("sandbox search finds tickets only")
        if name != "type":
            terms.append((name, op, raw.strip('"')))
    return terms


def _found(zd: Zendesk, terms: list[Term]) -> list[JsonDict]:
    """The index's tickets (as it holds them) matching every term, in id order."""
    return [t for t in zd.searchable() if all(_matches(zd, t, term) for term in terms)]


def _matches(zd: Zendesk, data: JsonDict, term: Term) -> bool:
    name, op, value = term
    if name in ("tags", "tag"):
        return value in (data.get("tags") or [])
    if name == "external_id":
        ext = str(data.get("external_id") or "")
        return ext.startswith(value[:-1]) if value.endswith("*") else ext == value
    if name == "submitter":
        return str(data.get("submitter_id")) == value
    if name == "requester":
        users = zd.search_users(value)
        return bool(users) and data.get("requester_id") == users[0]["id"]
    stamp = str(data.get(f"{name}_at") or "")[: len(value)]  # created or updated
    return {">": stamp > value, ">=": stamp >= value, "<": stamp < value}.get(op, stamp <= value)


def search(zd: Zendesk, request: Request) -> JsonDict:
    terms, page = _terms(request), int_arg(request, "page", 1)
    if page > MAX_RESULTS // PER_PAGE:
        raise error(422, "InvalidPaginationParameter", "at most 1000 results per query")
    results = [{**t, "result_type": "ticket"} for t in _found(zd, terms)][:MAX_RESULTS]
    url = f"{zd.api}/search.json?query={request.args['query'].strip().replace(' ', '+')}"
    return _paged("results", results, page, PER_PAGE, url)


def search_count(zd: Zendesk, request: Request) -> JsonDict:
    """The number of results, uncapped (deleted tickets excluded)."""
    return {"count": len(_found(zd, _terms(request)))}


def search_export(zd: Zendesk, request: Request) -> JsonDict:
    if request.args.get("filter[type]") != "ticket":
        raise invalid("filter[type] is required (ticket)")
    size, after = int_arg(request, "page[size]", 100), request.args.get("page[after]")
    if size > SEARCH_PAGE_MAX:
        raise invalid(f"page[size] must be 1..{SEARCH_PAGE_MAX}")
    try:
        start = decode_cursor(after, int)[0] if after else 0
    except ValueError:
        raise invalid("page[after] is not a cursor this search gave") from None
    rest = [t for t in _found(zd, _terms(request)) if int(t["id"]) > start]
    page, more = rest[:size], len(rest) > size
    cursor = encode_cursor([int(page[-1]["id"])]) if page else after
    params = {**request.args, "page[after]": cursor or ""}
    return {
        "results": [{**t, "result_type": "ticket"} for t in page],
        "facets": None,
        "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None},
        "links": {
            "next": f"{zd.api}/search/export?{urlencode(params)}" if more else None,
            "prev": None,
        },
    }


def incremental_tickets(zd: Zendesk, request: Request) -> JsonDict:
    cursor = request.args.get("cursor")
    try:
        position = decode_cursor(cursor, float, int) if cursor else None
        start = int(request.args.get("start_time", "")) if not cursor else 0
    except ValueError:
        raise invalid(
            "start_time (unix seconds) or a cursor this export gave is required"
        ) from None
    if position is None:
        if start > zd.now - 60:
            raise invalid("start_time must be at least one minute ago")
        position = (float(start), -1)  # tickets changed at start_time or later
    changed = sorted(zd.tickets.values(), key=lambda r: (r.changed_ts, int(r.data["id"])))
    rest = [r for r in changed if (r.changed_ts, int(r.data["id"])) > position]
    page = rest[: zd.cfg.export_page_size]
    after = encode_cursor(
        [page[-1].changed_ts, int(page[-1].data["id"])] if page else list(position)
    )
    return {
        "tickets": [_exported(r) for r in page],
        "after_cursor": after,
        "after_url": f"{zd.api}/incremental/tickets/cursor.json?cursor={after}",
        "before_cursor": None,
        "before_url": None,
        "end_of_stream": len(rest) <= len(page),
    }


def _exported(record: TicketRecord) -> JsonDict:
    data = record.shown()
    if record.deleted_at is not None:
        data["status"] = "deleted"
    data["generated_timestamp"] = int(record.changed_ts)  # created, updated or deleted
    return data
