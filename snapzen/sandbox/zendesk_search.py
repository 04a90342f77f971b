"""The fake Zendesk's reads across the account: Search (``search``, ``search/count``), Export
Search Results and the cursor-based Incremental Ticket Export. Each endpoint is a function of the
account (``Zendesk``) and the request, called by the app under the account's lock.

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
from urllib.parse import urlencode

from werkzeug.wrappers import Request

from snapzen.sandbox.responses import JsonDict, decode_cursor, encode_cursor, error, invalid
from snapzen.sandbox.zendesk import TicketRecord, Zendesk, int_arg

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
    indexed = (r.indexed for r in zd.searchable())
    return [t for t in indexed if t is not None and all(_matches(zd, t, term) for term in terms)]


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
    more = page * PER_PAGE < len(results)
    query = request.args["query"].strip().replace(" ", "+")
    return {
        "results": results[(page - 1) * PER_PAGE : page * PER_PAGE],
        "count": len(results),
        "next_page": f"{zd.api}/search.json?query={query}&page={page + 1}" if more else None,
        "previous_page": None,
    }


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
