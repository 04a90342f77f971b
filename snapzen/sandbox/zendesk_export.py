"""Fake Zendesk bulk reads: Export Search Results and the cursor-based Incremental Ticket Export.

What reconciliation relies on, as the reference describes them:
- search export (``GET /api/v2/search/export?query=…&filter[type]=ticket&page[size]=…``):
  cursor ``page[after]``, ``meta.has_more``/``meta.after_cursor``, ``links.next``; no 1,000
  result cap; 100 requests a minute per account; archived tickets included, deleted ones not;
- incremental export (``GET /api/v2/incremental/tickets/cursor?start_time=…`` then
  ``?cursor=…``): every ticket changed since ``start_time`` (archived and deleted ones
  too, deleted with status ``deleted``), in the order they last changed (an update or a
  deletion shows a ticket again, later), ``after_cursor``, ``after_url``, ``end_of_stream``;
  ``start_time`` at least one minute in the past; 10 requests a minute.
Each has its own per-minute budget (a 429 with Retry-After and Zendesk's body), on top of the
account budget: the app counts both (``SandboxApp.budgets``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.responses import decode_cursor, encode_cursor, error, json_response
from snapzen.sandbox.zendesk_search import found, parse_query
from snapzen.sandbox.zendesk_store import TicketRecord, ZendeskStore

SEARCH_PAGE_MAX = 1000


class ZendeskExportApi:
    def __init__(self, cfg: SandboxConfig, store: ZendeskStore) -> None:
        self.cfg = cfg
        self.store = store

    # ---- search export -------------------------------------------------------------------------
    def search_export(self, request: Request) -> Response:
        query = request.args.get("query", "")
        if request.args.get("filter[type]") != "ticket":
            return error(400, "InvalidValue", "filter[type] is required (ticket)")
        try:
            size = int(request.args.get("page[size]", "100"))
        except ValueError:
            return error(400, "InvalidValue", "page[size] must be an integer")
        if not 1 <= size <= SEARCH_PAGE_MAX:
            return error(400, "InvalidValue", f"page[size] must be 1..{SEARCH_PAGE_MAX}")
        after = request.args.get("page[after]")
        start = decode_cursor(after, float, int) if after else (0.0, 0)
        if start is None:
            return error(400, "InvalidValue", "page[after] is not a cursor this search gave")
        terms = parse_query(query)
        if isinstance(terms, Response):
            return terms
        with self.store.lock:
            matches = found(self.store, terms)
        rest = [r for r in matches if int(r.data["id"]) > start[1]]
        page, more = rest[:size], len(rest) > size
        cursor = encode_cursor([0.0, int(page[-1].data["id"])]) if page else after
        next_url = None
        if more:
            params = {"query": query, "filter[type]": "ticket", "page[size]": size}
            params["page[after]"] = cursor or ""
            next_url = f"{self._base()}/search/export?{urlencode(params)}"
        return json_response(
            {
                "results": [_as_result(r) for r in page],
                "facets": None,
                "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None},
                "links": {"next": next_url, "prev": None},
            }
        )

    # ---- incremental ticket export ------------------------------------------------------------
    def incremental_tickets(self, request: Request) -> Response:
        now = self.store.tick()
        cursor_text = request.args.get("cursor")
        if cursor_text:
            position = decode_cursor(cursor_text, float, int)
            if position is None:
                return error(400, "InvalidValue", "cursor is not one this export gave")
        else:
            try:
                start_time = int(request.args.get("start_time", ""))
            except ValueError:
                return error(400, "InvalidValue", "start_time (unix seconds) is required")
            if start_time > now - 60:
                return error(400, "InvalidValue", "start_time must be at least one minute ago")
            position = (float(start_time), 0)
        size = self.cfg.export_page_size
        with self.store.lock:
            changed = sorted(
                ((r.changed_ts, int(r.data["id"]), r) for r in self.store.tickets.values()),
                key=lambda item: (item[0], item[1]),
            )
            if cursor_text:  # strictly after the last ticket handed out
                rest = [item for item in changed if (item[0], item[1]) > position]
            else:
                rest = [item for item in changed if item[0] >= position[0]]
            page = rest[:size]
            tickets = [_as_exported(r) for _, _, r in page]
        end = len(rest) <= size
        after = encode_cursor([page[-1][0], page[-1][1]]) if page else encode_cursor(list(position))
        return json_response(
            {
                "tickets": tickets,
                "after_cursor": after,
                "after_url": f"{self._base()}/incremental/tickets/cursor.json?cursor={after}",
                "before_cursor": None,
                "before_url": None,
                "end_of_stream": end,
            }
        )

    # ---- plumbing ------------------------------------------------------------------------------
    def _base(self) -> str:
        return f"{self.store.base_url}/zendesk/api/v2"


def _as_result(record: TicketRecord) -> dict[str, Any]:
    return {**record.shown(), "result_type": "ticket"}


def _as_exported(record: TicketRecord) -> dict[str, Any]:
    data = record.shown()
    if record.deleted_at is not None:
        data["status"] = "deleted"
    data["generated_timestamp"] = int(record.changed_ts)  # created, updated or deleted
    return data
