"""The process's wall clock, with one hook for exercising wrong clocks end to end.

``SNAPZEN_CLOCK_OFFSET_SECONDS`` (a float, may be negative) moves every reading snapzen takes
from this function, as faketime would, so a test can run the real CLI with its clock days
ahead or behind. It is never needed in production; when set, the offset is logged at warning
on first use so a forgotten one shows up in the logs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache

OFFSET_VARIABLE = "SNAPZEN_CLOCK_OFFSET_SECONDS"


@cache
def _offset(raw: str | None) -> timedelta:
    if not raw:
        return timedelta(0)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE} must be a number of seconds, not {raw!r}") from None
    from snapzen.support.log import get_logger  # lazy: start-up time

    get_logger(__name__).warning("clock_offset_in_effect", seconds=seconds)
    return timedelta(seconds=seconds)


def utcnow() -> datetime:
    """Now, in UTC (moved by ``SNAPZEN_CLOCK_OFFSET_SECONDS`` when set)."""
    return datetime.now(UTC) + _offset(os.environ.get(OFFSET_VARIABLE))
