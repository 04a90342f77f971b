"""Fake SnapEngage Logs API v2: ``GET /api/v2/{orgId}/logs`` with token auth and paging."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from snapzen.sandbox.config import SandboxConfig, service_time
from snapzen.sandbox.data import Case, Dataset
from snapzen.sandbox.responses import decode_cursor, encode_cursor, error, is_plain, json_response

_Key = tuple[int, str]


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def _first(pair: tuple[_Key, Case]) -> _Key:
    return pair[0]


def _key(case: Case) -> _Key:
    return int(case["created_at_milliseconds"]), str(case["id"])


class SnapEngageApi:
    """Serves the generated cases (and a test's, added before it runs): no locking needed."""

    def __init__(
        self, cfg: SandboxConfig, dataset: Dataset, clock: Callable[[], float] = service_time
    ) -> None:
        self.cfg = cfg
        self._clock = clock
        self._by_widget: dict[str, list[Case]] = {w: [] for w in dataset.widget_ids}
        for case in dataset.cases:  # already in (created, id) order
            self._by_widget[case["widget_id"]].append(case)
        # Each widget's sort keys, for finding a page by bisection: scanning and sorting a
        # widget's cases for every page made the emulator's CPU grow with the data set
        # (41 s at 100,000 chats), taken from snapzen on the benchmark's shared two cores.
        self._keys: dict[str, list[_Key]] = {
            w: [_key(c) for c in cases] for w, cases in self._by_widget.items()
        }
        if any(keys != sorted(keys) for keys in self._keys.values()):
            raise ValueError("sandbox data set: cases are not in (created, id) order")
        # Whether orjson writes these cases exactly as json does: checked once here, not on
        # every page, as the cases never change (json took ~0.5 s of the emulator's CPU for
        # the pages of 10,000 chats; orjson a third of that).
        self._plain = all(is_plain(case) for case in dataset.cases)

    def add_cases(
        self, widget: str, cases: list[Case], millis: list[int], *, replace: bool = False
    ) -> None:
        """Serve these cases too (a test's chats; ``replace``: instead of the widget's), at
        ``millis``, the creation times the windows and the cursor order by (a hostile case may
        carry no usable one)."""
        if replace:
            self._by_widget[widget], self._keys[widget] = [], []
        cases_of = self._by_widget.setdefault(widget, [])
        keys = self._keys.setdefault(widget, [])
        for case, at in zip(cases, millis, strict=True):
            key = (at, str(case.get("id") if isinstance(case, dict) else id(case)))
            where = bisect.bisect_right(keys, key)
            keys.insert(where, key)
            cases_of.insert(where, case)
        self._plain = self._plain and all(is_plain(case) for case in cases)

    def _window(
        self, widget: str, lo: int, hi: int, cursor: _Key | None, limit: int
    ) -> list[tuple[_Key, Case]]:
        """Up to ``limit`` of the widget's (key, case) created in [lo, hi) and after
        ``cursor``, in (created, id) order."""
        keys = self._keys.get(widget)
        if not keys:
            return []
        first = bisect.bisect_left(keys, lo, key=lambda k: k[0])
        if cursor is not None:
            first = max(first, bisect.bisect_right(keys, cursor))
        end = bisect.bisect_left(keys, hi, key=lambda k: k[0])
        last = min(end, first + limit)
        return list(zip(keys[first:last], self._by_widget[widget][first:last], strict=True))

    def logs(self, request: Request, org_id: str) -> Response:
        # The real API wants the raw token; "Bearer <token>" is a classic client bug, so refuse it.
        if request.headers.get("Authorization") != self.cfg.snapengage_token:
            return error(401, "Unauthorized", "Missing or invalid API token")
        if org_id != self.cfg.org_id:
            return error(404, "NotFound", "Unknown organization")
        args = request.args
        start, end = _parse_day(args.get("start")), _parse_day(args.get("end"))
        if start is None or end is None:
            return error(400, "BadRequest", "start and end are required ISO 8601 dates")
        tz_name = args.get("timezone") or "Etc/UTC"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            return error(400, "BadRequest", f"Unknown timezone {tz_name!r}")
        widgets = [w for w in (args.get("widgetId") or "").split(",") if w]
        token = args.get("next")
        cursor: _Key | None = None
        if token is not None:
            if len(widgets) != 1:
                return error(400, "BadRequest", "next only works with a single widgetId")
            cursor = decode_cursor(token, int, str)
            if cursor is None:
                return error(400, "BadRequest", "Invalid next token")

        # end is inclusive: the whole of that calendar day in the requested timezone.
        lo = int(datetime.combine(start, datetime.min.time(), tz).timestamp() * 1000)
        hi = int(
            datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).timestamp() * 1000
        )
        # SnapEngage purges old logs: anything older than the retention is gone, measured at the
        # moment the request is served.
        lo = max(lo, int((self._clock() - self.cfg.retention_days * 86400) * 1000))

        names = widgets or list(self._by_widget)
        # One more than a page: enough to tell whether a next page exists.
        wanted = self.cfg.page_size + 1
        ranges = [self._window(w, lo, hi, cursor, wanted) for w in names]
        selected = list(itertools.islice(heapq.merge(*ranges, key=_first), wanted))
        page = [case for _, case in selected[: self.cfg.page_size]]
        link = ""
        # Paging only works for one widget (documented); several widgets are silently capped to
        # one page, as the real API does.
        if len(widgets) == 1 and len(selected) > len(page):
            params = [(k, v) for k, v in args.items(multi=True) if k != "next"]
            params.append(("next", encode_cursor(list(selected[len(page) - 1][0]))))
            link = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(params)}"
        return json_response({"cases": page, "linkToNextSetOfResults": link}, plain=self._plain)
