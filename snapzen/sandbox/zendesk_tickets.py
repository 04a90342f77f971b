"""The fake Zendesk's ticket endpoints: imports (one, or up to 100 by a job), job statuses,
List Tickets (the ``external_id`` lookup), show and show_many, comments, updates, deletion
and permanent deletion by jobs. Each endpoint is a function of the account (``Zendesk``) and
the request, called by the app under the account's lock."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.responses import JsonDict, error, json_response, listing, not_found
from snapzen.sandbox.zendesk import (
    MAX_BATCH,
    STATUSES,
    Zendesk,
    body_value,
    ids_arg,
    int_arg,
    iso_utc,
    record_invalid,
    validate_ticket,
)


def import_ticket(zd: Zendesk, request: Request) -> Response:
    item = body_value(request, "ticket", dict)
    problem = validate_ticket(item, zd.cfg.strict_requester) or zd.unknown_user(item)
    if problem:
        raise record_invalid(problem)
    archive = request.args.get("archive_immediately", "").lower() in ("1", "true", "yes", "on")
    return json_response({"ticket": zd.create_ticket(item, archive, None).shown()}, 201)


def import_create_many(zd: Zendesk, request: Request) -> JsonDict:
    tickets = body_value(request, "tickets", list)
    if not tickets:
        raise error(400, "InvalidJSON", 'body must be {"tickets": [...]} with 1-100 items')
    if len(tickets) > MAX_BATCH:
        got = f"create_many accepts at most {MAX_BATCH} tickets per request, got {len(tickets)}"
        raise error(400, "TooManyValues", got)
    archive = request.args.get("archive_immediately", "").lower() in ("1", "true", "yes", "on")
    return zd.start_job("import", "bulk_import_tickets", tickets, archive)


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
    page, per_page = int_arg(request, "page", 1), int_arg(request, "per_page", 100)
    per_page = min(MAX_BATCH, per_page)
    base = f"{zd.api}/tickets.json?per_page={per_page}"
    more = page * per_page < len(visible)
    return listing(
        "tickets",
        visible[(page - 1) * per_page : page * per_page],
        len(visible),
        next_page=f"{base}&page={page + 1}" if more else None,
        previous_page=f"{base}&page={page - 1}" if page > 1 else None,
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
    return zd.start_job("destroy", "bulk_delete_tickets", ids_arg(request))


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
    return zd.start_job("purge", "bulk_permanent_delete_tickets", ids_arg(request))
