"""Fake SnapEngage Logs API v2: ``GET /api/v2/{orgId}/logs`` with token auth and paging; logs
older than ``retention_days`` (60) are gone, measured when each request is served."""

from __future__ import annotations

import bisect
import heapq
import itertools
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.config import SandboxConfig, service_time
from snapzen.sandbox.data import Case, Dataset
from snapzen.sandbox.responses import decode_cursor, encode_cursor, error, json_response

_Key = tuple[int, str]


def _day(value: str | None) -> date:
    try:
        return datetime.fromisoformat(value or "").date()
    except ValueError:
        raise error(400, "BadRequest", "start and end are required ISO 8601 dates") from None


def _first(pair: tuple[_Key, Case]) -> _Key:
    return pair[0]


def _created(pair: tuple[_Key, Case]) -> int:
    return pair[0][0]


class SnapEngage:
    """Serves the generated cases (and a test's, added before it runs): no locking needed."""

    def __init__(self, cfg: SandboxConfig, dataset: Dataset) -> None:
        self.cfg, self.clock = cfg, service_time  # the service's own clock (a test may set it)
        # Each widget's (key, case) pairs in key order, for finding a page by bisection:
        # scanning and sorting a widget's cases for every page made the emulator's CPU grow
        # with the data set (41 s at 100,000 chats), taken from snapzen on the shared cores.
        self._cases: dict[str, list[tuple[_Key, Case]]] = {w: [] for w in dataset.widget_ids}
        for case in dataset.cases:  # already in (created, id) order
            key = (int(case["created_at_milliseconds"]), str(case["id"]))
            self._cases[case["widget_id"]].append((key, case))

    def add_cases(
        self, widget: str, cases: list[Case], millis: list[int], *, replace: bool = False
    ) -> None:
        """Serve these cases too (a test's chats; ``replace``: instead of the widget's), at
        ``millis``, the creation times the windows and the cursor order by (a hostile case may
        carry no usable one)."""
        pairs = [] if replace else self._cases.get(widget, [])
        for case, at in zip(cases, millis, strict=True):
            key = (at, str(case.get("id") if isinstance(case, dict) else id(case)))
            bisect.insort_right(pairs, (key, case), key=_first)
        self._cases[widget] = pairs

    def _window(
        self, widget: str, lo: int, hi: int, cursor: tuple[Any, ...] | None, limit: int
    ) -> list[tuple[_Key, Case]]:
        """Up to ``limit`` of the widget's (key, case) created in [lo, hi) and after
        ``cursor``, in (created, id) order."""
        pairs = self._cases.get(widget, [])
        first = bisect.bisect_left(pairs, lo, key=_created)
        if cursor is not None:
            first = max(first, bisect.bisect_right(pairs, cursor, key=_first))
        return pairs[first : min(bisect.bisect_left(pairs, hi, key=_created), first + limit)]

    def logs(self, request: Request, org_id: str) -> Response:
        # The real API wants the raw token; "Bearer <token>" is a classic client bug, so refuse it.
        if request.headers.get("Authorization") != self.cfg.snapengage_token:
            raise error(401, "Unauthorized", "Missing or invalid API token")
        if org_id != self.cfg.org_id:
            raise error(404, "NotFound", "Unknown organization")
        args = request.args
        start, end = _day(args.get("start")), _day(args.get("end"))
        try:
            tz = ZoneInfo(args.get("timezone") or "Etc/UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise error(400, "BadRequest", f"Unknown timezone {args.get('timezone')!r}") from None
        widgets = [w for w in (args.get("widgetId") or "").split(",") if w]
        token = args.get("next")
        if token is not None and len(widgets) != 1:
            raise error(400, "BadRequest", "next only works with a single widgetId")
        try:
            cursor = decode_cursor(token, int, str) if token is not None else None
        except ValueError:
            raise error(400, "BadRequest", "Invalid next token") from None
        # end is inclusive: the whole of that calendar day in the requested timezone.
        lo, hi = (
            int(datetime.combine(d, time(), tz).timestamp() * 1000)
            for d in (start, end + timedelta(days=1))
        )
        # SnapEngage purges old logs: anything older than the retention is gone.
        lo = max(lo, int((self.clock() - self.cfg.retention_days * 86400) * 1000))
        # One more than a page: enough to tell whether a next page exists.
        wanted = self.cfg.page_size + 1
        ranges = [self._window(w, lo, hi, cursor, wanted) for w in widgets or list(self._cases)]
        selected = list(itertools.islice(heapq.merge(*ranges, key=_first), wanted))
        page = [case for _, case in selected[: self.cfg.page_size]]
        link = ""
        # Paging only works for one widget (documented); several widgets are silently capped to
        # one page, as the real API does.
        if len(widgets) == 1 and len(selected) > len(page):
            params = [(k, v) for k, v in args.items(multi=True) if k != "next"]
            params.append(("next", encode_cursor(list(selected[len(page) - 1][0]))))
            link = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(params)}"
        return json_response({"cases": page, "linkToNextSetOfResults": link})
