"""Search (``GET /api/v2/search``, ``search/count``; the query language of ``search/export``
too) and ticket comments for the fake Zendesk.

Search is the one way to find archived tickets besides their id, so the sandbox supports the
subset snapzen uses: ``type:ticket`` with ``tags:X`` (or ``tag:X``), ``requester:EMAIL``,
``submitter:ID``, ``external_id:X`` (``*`` at the end for a prefix) and ``created``/``updated``
compared (``>``, ``>=``, ``<``, ``<=``) with a date, ANDed; anything else is a 400. Deleted
tickets are not found; archived ones are. Real search lags writes by minutes; the sandbox
answers at once (tests wanting lag can wait).
"""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.responses import error, json_response, listing, not_found
from snapzen.sandbox.zendesk_store import JsonDict, TicketRecord, ZendeskStore

PER_PAGE = 100
MAX_RESULTS = 1000  # Zendesk: at most 1,000 results per query; beyond that a 422
Term = tuple[str, str, str]
_PART = re.compile(r'(\w+)(:|>=|<=|>|<)("[^"]*"|\S+)|(\S+)')
_EQUALS = ("type", "tags", "tag", "requester", "submitter", "external_id")
_COMPARES = ("created", "updated")


def parse_query(query: str) -> list[Term] | Response:
    """The query's terms (``type:ticket`` checked and left out), or a 400 naming what the
    sandbox does not support."""
    if not query.strip():
        return error(400, "InvalidValue", "query is required")
    terms: list[Term] = []
    for match in _PART.finditer(query):
        name, op, raw, free = match.groups()
        if free is not None or (name not in _EQUALS if op == ":" else name not in _COMPARES):
            return error(400, "InvalidValue", f"sandbox search does not support {match[0]!r}")
        value = raw.strip('"')
        if name == "type" and value != "ticket":
            return error(400, "InvalidValue", "sandbox search finds tickets only")
        if name != "type":
            terms.append((name, op, value))
    return terms


def found(store: ZendeskStore, terms: list[Term]) -> list[TicketRecord]:
    """Live (not deleted) tickets matching every term, in id order (caller holds the lock)."""
    return [
        r
        for r in store.tickets.values()
        if r.deleted_at is None and all(_matches(store, r.data, t) for t in terms)
    ]


def _matches(store: ZendeskStore, data: JsonDict, term: Term) -> bool:
    name, op, value = term
    if name in ("tags", "tag"):
        return value in (data.get("tags") or [])
    if name == "external_id":
        ext = str(data.get("external_id") or "")
        return ext.startswith(value[:-1]) if value.endswith("*") else ext == value
    if name == "submitter":
        return str(data.get("submitter_id")) == value
    if name == "requester":
        users = store.search_users(value)
        return bool(users) and data.get("requester_id") == users[0]["id"]
    stamp = str(data.get(f"{name}_at") or "")[: len(value)]  # created or updated
    return {">": stamp > value, ">=": stamp >= value, "<": stamp < value}.get(op, stamp <= value)


def count(store: ZendeskStore, request: Request) -> Response:
    """``GET search/count``: the number of results, uncapped (deleted tickets excluded)."""
    terms = parse_query(request.args.get("query") or "")
    if isinstance(terms, Response):
        return terms
    with store.lock:
        return json_response({"count": len(found(store, terms))})


def search(store: ZendeskStore, request: Request) -> Response:
    query = (request.args.get("query") or "").strip()
    terms = parse_query(query)
    if isinstance(terms, Response):
        return terms
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        return error(400, "InvalidValue", "page must be an integer")
    if page > MAX_RESULTS // PER_PAGE:
        return error(422, "InvalidPaginationParameter", "at most 1000 results per query")
    with store.lock:
        results = [{**r.data, "result_type": "ticket"} for r in found(store, terms)][:MAX_RESULTS]
    more = page * PER_PAGE < len(results)
    base = f"{store.base_url}/zendesk/api/v2/search.json"
    return json_response(
        {
            "results": results[(page - 1) * PER_PAGE : page * PER_PAGE],
            "count": len(results),
            "next_page": f"{base}?query={query.replace(' ', '+')}&page={page + 1}"
            if more
            else None,
            "previous_page": None,
        }
    )


def comments(store: ZendeskStore, ticket_id: int) -> Response:
    """``GET tickets/{id}/comments``: readable for archived tickets too, 404 once deleted."""
    with store.lock:
        record = store.live(ticket_id)
        if record is None:
            return not_found()
        return listing("comments", [dict(c) for c in record.data.get("comments") or []])
