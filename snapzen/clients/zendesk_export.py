"""Zendesk bulk reads for reconciliation: the cursor-based Incremental Ticket Export and
Export Search Results (a mixin of ZendeskClient, which supplies the transport).

Both have their own budgets (requests a minute, account-wide): paced here, so a long
reconciliation waits between pages instead of collecting 429s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from snapzen.support.errors import ProtocolError
from snapzen.support.log import get_logger

log = get_logger("snapzen.clients.zendesk")

INCREMENTAL_EXPORT_RPM = 10
SEARCH_EXPORT_RPM = 100


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _after_url(answer: dict[str, Any]) -> Any:
    """The incremental export's next page: ``after_url`` until ``end_of_stream``."""
    if answer.get("end_of_stream") is True:
        return None
    link = answer.get("after_url")
    if not isinstance(link, str) or not link:  # not "no next page": the read is unfinished
        raise ProtocolError("zendesk incremental ticket export: no after_url")
    return link


def _links_next(answer: dict[str, Any]) -> Any:
    """Export Search Results' next page: ``links.next`` while ``meta.has_more``."""
    meta, links = answer.get("meta") or {}, answer.get("links") or {}
    if not (isinstance(meta, dict) and meta.get("has_more") is True):
        return None
    link = links.get("next") if isinstance(links, dict) else None
    if not isinstance(link, str) or not link:  # not "no next page": the read is unfinished
        raise ProtocolError("zendesk search export: has_more without links.next")
    return link


class BulkReads:
    # Supplied by ZendeskClient.
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]
    _call: Callable[..., Any]
    _pages: Callable[..., Iterator[list[Any]]]
    _show_many: Callable[[str, Sequence[int | str], str], Iterator[Any]]

    def incremental_tickets(self, start_time: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of the cursor-based Incremental Ticket Export: every ticket changed since
        ``start_time`` (unix seconds, at least a minute ago), archived and deleted ones
        included (deleted: status ``deleted``). Follows ``after_url`` to ``end_of_stream``,
        at most INCREMENTAL_EXPORT_RPM requests a minute."""
        pages = self._pages(
            "/api/v2/incremental/tickets/cursor",
            {"start_time": str(int(start_time))},
            "tickets",
            before=lambda: self._export_pace("incremental", INCREMENTAL_EXPORT_RPM),
            next_link=_after_url,
        )
        return ([item for item in page if isinstance(item, dict)] for page in pages)

    def search_export(self, query: str, page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Pages of Export Search Results for tickets (no 1,000-result cap; cursor paging by
        ``links.next`` while ``meta.has_more``), at most SEARCH_EXPORT_RPM requests a minute.
        Search is indexed: tickets from the last minutes may not be found yet."""
        pages = self._pages(
            "/api/v2/search/export",
            {"query": query, "filter[type]": "ticket", "page[size]": str(page_size)},
            "results",
            "?query=…",
            before=lambda: self._export_pace("search_export", SEARCH_EXPORT_RPM),
            next_link=_links_next,
        )
        return ([item for item in page if isinstance(item, dict)] for page in pages)

    def search_count(self, query: str) -> int:
        """``GET /api/v2/search/count``: how many results ``query`` has (one request)."""
        answer = self._call("GET", "/api/v2/search/count", params={"query": query})
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ProtocolError("zendesk GET /api/v2/search/count: no count in the answer")
        return count

    def show_users(self, user_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
        """``users/show_many`` (100 ids a call): each user Zendesk has, as (email, name).
        Reconciliation derives the subject reference of an adopted ticket from its
        requester's email; the values never reach a log line."""
        return {
            user["id"]: (_text(user.get("email")), _text(user.get("name")))
            for user in self._show_many("/api/v2/users/show_many", user_ids, "users")
            if isinstance(user, dict) and isinstance(user.get("id"), int)
        }

    def _export_pace(self, endpoint: str, per_minute: int) -> None:
        # Per client (the mixin has no __init__ of its own): endpoint -> last request time.
        sent: dict[str, float] = self.__dict__.setdefault("_export_sent", {})
        last = sent.get(endpoint)
        if last is not None:
            wait = last + 60.0 / per_minute - self._clock()
            if wait > 0:
                log.info("zendesk.export_pacing", endpoint=endpoint, wait=round(wait, 2))
                self._sleep(wait)
        sent[endpoint] = self._clock()
