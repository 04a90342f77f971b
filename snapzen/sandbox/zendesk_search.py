"""Search (``GET /api/v2/search``) and ticket comments for the fake Zendesk.

Search is the one way to find archived tickets besides their id, so the sandbox supports the
subset snapzen uses: ``type:ticket`` with ``tags:X``, ``requester:EMAIL`` and
``external_id:X`` terms (ANDed). Deleted tickets are not found; archived ones are. Real
search lags writes by minutes; the sandbox answers at once (tests wanting lag can wait).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.responses import error, json_response, listing, not_found
from snapzen.sandbox.zendesk_store import JsonDict, ZendeskStore

PER_PAGE = 100
MAX_RESULTS = 1000  # Zendesk: at most 1,000 results per query; beyond that a 422


def _matches(store: ZendeskStore, data: JsonDict, terms: list[tuple[str, str]]) -> bool:
    for key, value in terms:
        if key == "tags" and value not in (data.get("tags") or []):
            return False
        if key == "external_id" and data.get("external_id") != value:
            return False
        if key == "submitter" and str(data.get("submitter_id")) != value:
            return False
        if key == "requester":
            users = store.search_users(value)
            if not users or data.get("requester_id") != users[0]["id"]:
                return False
    return True


def _terms(request: Request) -> list[tuple[str, str]] | Response:
    query = (request.args.get("query") or "").strip()
    if not query:
        return error(400, "InvalidValue", "query is required")
    terms: list[tuple[str, str]] = []
    for part in query.split():
        key, _, value = part.partition(":")
        if key not in ("type", "tags", "requester", "submitter", "external_id") or not value:
            return error(400, "InvalidValue", f"sandbox search does not support {key!r}")
        if key == "type" and value != "ticket":
            return error(400, "InvalidValue", "sandbox search finds tickets only")
        if key != "type":
            terms.append((key, value))
    return terms


def count(store: ZendeskStore, request: Request) -> Response:
    """``GET search/count``: the number of results, uncapped (deleted tickets excluded)."""
    store.tick()
    terms = _terms(request)
    if isinstance(terms, Response):
        return terms
    with store.lock:
        total = sum(
            1
            for r in store.tickets.values()
            if r.deleted_at is None and _matches(store, r.data, terms)
        )
    return json_response({"count": total})


def search(store: ZendeskStore, request: Request) -> Response:
    store.tick()
    query = (request.args.get("query") or "").strip()
    terms = _terms(request)
    if isinstance(terms, Response):
        return terms
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        return error(400, "InvalidValue", "page must be an integer")
    if page > MAX_RESULTS // PER_PAGE:
        return error(422, "InvalidPaginationParameter", "at most 1000 results per query")
    with store.lock:
        found = [
            {**r.data, "result_type": "ticket"}
            for r in store.tickets.values()
            if r.deleted_at is None and _matches(store, r.data, terms)
        ][:MAX_RESULTS]
    chunk = found[(page - 1) * PER_PAGE : page * PER_PAGE]
    more = page * PER_PAGE < len(found)
    base = f"{store.base_url}/zendesk/api/v2/search.json"
    body: dict[str, Any] = {
        "results": chunk,
        "count": len(found),
        "next_page": f"{base}?query={query.replace(' ', '+')}&page={page + 1}" if more else None,
        "previous_page": None,
    }
    return json_response(body)


def comments(store: ZendeskStore, ticket_id: int) -> Response:
    """``GET tickets/{id}/comments``: readable for archived tickets too, 404 once deleted."""
    store.tick()
    with store.lock:
        record = store.tickets.get(ticket_id)
        if record is None or record.deleted_at is not None:
            return not_found()
        return listing("comments", [dict(c) for c in record.data.get("comments") or []])
