"""The one clock: what time it is, and how snapzen writes and reads a time.

Every wall-clock reading snapzen takes comes from :func:`now` (tests inject their own clock
where a function takes ``now=``/``clock=``; the default is always this one), so
``SNAPZEN_CLOCK_OFFSET_SECONDS`` (a float, may be negative) moves the whole program, as
faketime would: a test can run the real CLI with its clock days ahead or behind. It is never
needed in production; when set, the offset is logged at warning on first use so a forgotten
one shows up in the logs. Durations (waits, timeouts, poll timing) use ``time.monotonic``,
which no wall clock moves; tests/unit/support/test_one_clock.py keeps other wall-clock readings out.

Formats:
- snapzen's own timestamps (ledger, reports, checkpoints): :func:`format`, UTC to the second,
  ``2026-03-10T14:05:09Z`` (RFC 3339). Zendesk writes its times (``created_at``,
  ``updated_at``) in the same form, so :func:`parse` reads both.
- SnapEngage: its Logs API takes days (``start``/``end``, :func:`snapengage_day`,
  ``YYYY-MM-DD``) and sends times as epoch seconds or milliseconds (:func:`from_epoch`).
- log lines (:func:`format_millis`) and file names (:func:`format_compact`).
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache

OFFSET_VARIABLE = "SNAPZEN_CLOCK_OFFSET_SECONDS"
# Epoch values at or above this are milliseconds (SnapEngage sends both; 1e11 s is year 5138).
_MS_THRESHOLD = 100_000_000_000


@cache
def _offset(raw: str | None) -> timedelta:
    if not raw:
        return timedelta(0)
    try:
        return timedelta(seconds=float(raw))
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE} must be a number of seconds, not {raw!r}") from None


_warned: set[str] = set()


def offset() -> timedelta:
    """How far ``SNAPZEN_CLOCK_OFFSET_SECONDS`` moves the clock (zero when unset)."""
    raw = os.environ.get(OFFSET_VARIABLE)
    moved = _offset(raw)
    if moved and raw not in _warned:
        _warned.add(raw or "")  # before logging: the log line's own timestamp reads the clock
        from snapzen.support.log import get_logger  # lazy: start-up time

        get_logger(__name__).warning("clock_offset_in_effect", seconds=moved.total_seconds())
    return moved


def now() -> datetime:
    """Now, in UTC (moved by ``SNAPZEN_CLOCK_OFFSET_SECONDS`` when set)."""
    return datetime.now(UTC) + offset()


def reader(fixed: datetime | None) -> Callable[[], datetime]:
    """The clock of a function that takes an injected ``now``: that moment, or :func:`now`."""
    if fixed is None:
        return now
    return lambda: fixed


def local_now() -> datetime:
    """Now in the process's local time zone, naive (the `schedule` library's "at 03:30"),
    moved by the same offset."""
    return datetime.now() + offset()


def today() -> date:
    """Today's UTC date by :func:`now`."""
    return now().date()


def format(moment: datetime) -> str:
    """``2026-03-10T14:05:09Z``: ``moment`` in UTC, to the second (a naive one is taken as UTC).

    Formatted by hand: ``strftime`` was the largest single cost of building a ticket (several
    calls per transcript line)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{time_of_day(utc)}Z"


def time_of_day(moment: datetime) -> str:
    """``HH:MM:SS`` of ``moment`` as it is (no time zone change)."""
    return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"


def format_millis(moment: datetime) -> str:
    """``2026-03-10T14:05:09.123Z``: a log line's time."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{format(utc)[:-1]}.{utc.microsecond // 1000:03d}Z"


def format_compact(moment: datetime) -> str:
    """``20260310T140509Z``: a time that can stand in a file name."""
    return format(moment).replace("-", "").replace(":", "")


def parse(text: str) -> datetime:
    """An aware datetime from an RFC 3339 / ISO 8601 time: snapzen's own (:func:`format`),
    Zendesk's, or one with an offset (kept as given); a time with no zone is taken as UTC.
    ValueError when ``text`` is not a time."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_second(text: str) -> datetime:
    """:func:`parse` cut to the second, the precision of snapzen's stamps: two stamps compare
    as instants, whatever form or fraction each was written with."""
    return parse(text).replace(microsecond=0)


def parse_optional(text: object) -> datetime | None:
    """:func:`parse` of a stored value that may be missing (None or empty: None)."""
    return parse(str(text)) if text else None


def from_epoch(value: float) -> datetime:
    """SnapEngage's epoch times: seconds, or milliseconds when the number is that large.
    ValueError (or OverflowError/OSError) when out of range."""
    seconds = value / 1000 if value >= _MS_THRESHOLD else value
    return datetime.fromtimestamp(seconds, tz=UTC)


def snapengage_day(day: date) -> str:
    """A day as SnapEngage's Logs API takes it (``start``/``end``): ``YYYY-MM-DD``."""
    return day.isoformat()


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
