"""Rate-limit pacing for Zendesk, from the headers of every response (pure, fake-clock testable).

- ``RateLimitPacer``: the account budget per minute, and our own ``requests_per_minute`` cap;
- ``ListBudget``: an endpoint's own budget, sent as ``total=100; remaining=99; resets=43``
  (List Tickets, which the external_id lookups spend: 100 a minute, whatever the plan).

Header names are read in every spelling seen in recorded traffic from real accounts: the 2024
recordings write ``ratelimit`` as one word (``ratelimit-reset``,
``zendesk-ratelimit-tickets-index``), the 2023 ones hyphenate it (``rate-limit-reset``,
``zendesk-rate-limit-tickets-index``); both send ``X-Rate-Limit``/``X-Rate-Limit-Remaining``.
Each value below lists both spellings (docs/zendesk.md, "Rate limits").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

# Each tuple: the spellings of one value, in the order they are tried.
REMAINING_HEADERS = ("X-Rate-Limit-Remaining", "ratelimit-remaining", "rate-limit-remaining")
LIMIT_HEADERS = ("X-Rate-Limit", "ratelimit-limit", "rate-limit-limit")
RESET_HEADERS = ("ratelimit-reset", "rate-limit-reset", "X-Rate-Limit-Reset")
# Endpoint budgets (``total=…; remaining=…; resets=…``).
TICKETS_INDEX_HEADERS = ("zendesk-ratelimit-tickets-index", "zendesk-rate-limit-tickets-index")
WINDOW_SECONDS = 60.0


def first_header(headers: Mapping[str, str], names: Sequence[str]) -> str | None:
    """The first of ``names`` present, compared case-insensitively (plain dicts too)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)


def parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def parse_budget_header(value: str | None) -> dict[str, int]:
    """``total=30; remaining=29; resets=60`` → {"total": 30, "remaining": 29, "resets": 60}."""
    result: dict[str, int] = {}
    for part in (value or "").replace(",", ";").split(";"):
        key, sep, raw = part.partition("=")
        number = parse_int(raw) if sep else None
        if number is not None:
            result[key.strip().lower()] = number
    return result


class _Budget:
    """A budget read from headers: ``remaining`` requests until ``reset_at`` (monotonic). A
    request is granted while more than the reserve remains, else it waits for the reset."""

    def __init__(self, clock: Callable[[], float], reserve: int) -> None:
        self._clock = clock
        self._reserve = reserve
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._limit: int | None = None
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def _budget_delay(self, now: float) -> float:
        if self._remaining is None or self._reset_at is None:
            return 0.0
        if now >= self._reset_at:  # a new window: the old count no longer applies
            self._remaining, self._reset_at = None, None
            return 0.0
        # A reserve of 5 would halve a 10-rpm legacy plan: never keep back more than a tenth.
        reserve = self._reserve if self._limit is None else min(self._reserve, self._limit // 10)
        return 0.0 if self._remaining > reserve else self._reset_at - now

    def _delay(self, now: float) -> float:
        return self._budget_delay(now)

    def _count(self, now: float) -> None:
        if self._remaining is not None:
            self._remaining -= 1

    def delay(self) -> float:
        """Seconds to wait before sending the next request (0 when it may go now)."""
        with self._lock:
            return self._delay(self._clock())

    def take(self) -> float:
        """``delay`` and ``record_request`` as one step, for callers on several threads:
        0 when the request may leave now (and it is counted), else the seconds to wait
        before asking again."""
        with self._lock:
            now = self._clock()
            wait = self._delay(now)
            if wait <= 0:
                self._count(now)
            return wait

    def record_request(self) -> None:
        """Note a request leaving now (counts against our cap and the last known budget)."""
        with self._lock:
            self._count(self._clock())


class RateLimitPacer(_Budget):
    """Decides how long to wait before the next request from the last rate-limit headers.

    Zendesk sends ``X-Rate-Limit``/``X-Rate-Limit-Remaining`` (account budget per minute) and,
    on ticketing endpoints, the seconds until the window resets, spelled ``ratelimit-reset``
    (2024 recordings) or ``rate-limit-reset`` (2023 recordings). When the
    remaining budget falls to ``reserve`` we wait for the reset instead of spending it: the
    reserve leaves room for other integrations sharing the account, and the 429 never comes.
    Without a reset header the window is assumed to end a minute after it was first seen low.
    ``requests_per_minute`` (our own cap) is enforced over a sliding 60-second window.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        requests_per_minute: int | None = None,
        reserve: int = 5,
    ) -> None:
        super().__init__(clock, reserve)
        self._rpm = requests_per_minute
        self._sent: deque[float] = deque()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the budget headers of a response (any status, including 429)."""
        remaining = parse_int(first_header(headers, REMAINING_HEADERS))
        if remaining is None:
            return
        reset = parse_int(first_header(headers, RESET_HEADERS))
        limit = parse_int(first_header(headers, LIMIT_HEADERS))
        with self._lock:
            now = self._clock()
            self._remaining = remaining
            if limit is not None and limit > 0:
                self._limit = limit
            if reset is not None:
                self._reset_at = now + max(0, reset)
            elif self._reset_at is None or self._reset_at <= now:
                # Unknown alignment: the worst case is a full window from now.
                self._reset_at = now + WINDOW_SECONDS

    def _delay(self, now: float) -> float:
        return max(self._budget_delay(now), self._rpm_delay(now))

    def _count(self, now: float) -> None:
        self._sent.append(now)
        super()._count(now)

    def _rpm_delay(self, now: float) -> float:
        if self._rpm is None:
            return 0.0
        while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) < self._rpm:
            return 0.0
        # The (len - rpm + 1)th oldest send must leave the window before we may send.
        return self._sent[len(self._sent) - self._rpm] + WINDOW_SECONDS - now


class ListBudget(_Budget):
    """A per-endpoint budget read from a ``total=…; remaining=…; resets=…`` header.

    List Tickets (``GET /api/v2/tickets``, the external_id lookup of crash recovery) has its
    own 100-a-minute budget, separate from the account's: a recovery of a few hundred cases
    ran straight into 429s though the account budget was nearly untouched. ``take`` says how
    long to wait so the lookups stop at ``reserve`` instead of being refused."""

    def __init__(
        self,
        header: str | Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        reserve: int = 2,
    ) -> None:
        super().__init__(clock, reserve)
        # Every spelling of the header, tried in order (a str is one spelling).
        self.headers: tuple[str, ...] = (header,) if isinstance(header, str) else tuple(header)

    def observe(self, headers: Mapping[str, str]) -> None:
        budget = parse_budget_header(first_header(headers, self.headers))
        if "remaining" not in budget:
            return
        with self._lock:
            self._remaining = budget["remaining"]
            resets = budget.get("resets")
            self._reset_at = self._clock() + (
                max(0, resets) if resets is not None else WINDOW_SECONDS
            )
