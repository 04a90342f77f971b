"""The clock checks of the sync pass and the retention sweep (the pass's check against its own
earlier runs is ``Pipeline.today``; cursor rules are in ``ledger.cursor_rules``).

The local clock is checked against evidence it cannot have made: the ``Date`` header of
Zendesk's answer to the credential check (``GET users/me``), read fresh by every pass and every
sweep. Never against the runs snapzen recorded itself: one run under a wrong clock would make
the wrong clock look right (issue 23, item 6). ``require_clock_agrees`` is the
decision, ``check_against_zendesk`` asks Zendesk for its evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from snapzen.commands.summaries import span
from snapzen.support import clock
from snapzen.support.errors import FatalError
from snapzen.support.log import get_logger

log = get_logger(__name__)

# How far the local clock may read ahead of Zendesk's `Date` (whole seconds, sent a moment
# before we read our clock) before nothing is decided on it. Below the smallest
# `snapengage.settle_minutes` (5), so a chat still in progress can never look settled; far
# above what NTP-synced hosts differ by.
CLOCK_SKEW_MARGIN = timedelta(minutes=2)


class ClockAheadError(FatalError):
    """The local clock reads ahead of Zendesk's (or cannot be checked where it must be)."""


class Verdict(StrEnum):
    OK = "ok"
    BEHIND = "behind"  # harmless for deletion and settling; reported
    UNKNOWN = "unknown"  # no evidence (no or unreadable Date header)


@runtime_checkable
class ServerClock(Protocol):
    """A Zendesk client that proves its credentials with one cheap call and remembers the
    ``Date`` of the newest answer (``ZendeskClient``)."""

    def check_credentials(self) -> dict[str, Any]: ...

    def server_time(self) -> datetime | None: ...


def require_clock_agrees(
    local: datetime,
    server: datetime | None,
    *,
    action: str,
    need_evidence: bool,
    margin: timedelta = CLOCK_SKEW_MARGIN,
) -> Verdict:
    """Compare the local clock with Zendesk's ``Date`` (both aware; ``server`` None when the
    answer had no usable Date). Raise ClockAheadError when ``local`` is ahead by more than
    ``margin`` (exactly ``margin`` is still OK: deciding on a clock further ahead deletes early
    and sends unfinished chats), or, with ``need_evidence``, when there is no Date to compare
    with; log a clock behind or unchecked. ``action`` says what is refused ("sync", "delete")."""
    if server is None:
        if not need_evidence:
            log.warning("clock_unchecked", reason="no Date header in Zendesk's answer")
            return Verdict.UNKNOWN
        log.error("clock_unchecked", refused=action)
        raise ClockAheadError(
            "Zendesk's answer had no readable Date header, so the clock cannot be checked; "
            f"refusing to {action}. Check what sits between snapzen and Zendesk (a proxy "
            "that drops Date)"
        )
    gap, clocks = local - server, {"local": clock.format(local), "zendesk": clock.format(server)}
    if gap > margin:
        ahead = round(gap.total_seconds())
        log.error("clock_ahead_of_zendesk", **clocks, ahead_seconds=ahead, refused=action)
        raise ClockAheadError(
            f"the clock reads {clocks['local']}, {span(ahead)} ahead of Zendesk's "
            f"({clocks['zendesk']}, from its Date header); refusing to {action}. Fix the "
            "system clock (NTP) and run again"
        )
    if -gap > margin:
        behind, hint = round(-gap.total_seconds()), "harmless for deletion, but check NTP"
        log.warning("clock_behind_zendesk", **clocks, behind_seconds=behind, hint=hint)
        return Verdict.BEHIND
    return Verdict.OK


def check_against_zendesk(
    api: object, clock: Callable[[], datetime], *, action: str, need_evidence: bool
) -> Verdict | None:
    """One credential check on ``api`` (``GET users/me``), then its ``Date`` against
    ``clock()``. None when ``api`` is no ServerClock (a dry run's stand-in sink) and evidence
    is not required; with ``need_evidence`` such an api is refused too."""
    if not isinstance(api, ServerClock):
        if need_evidence:
            raise ClockAheadError(
                f"no Zendesk answer to check the clock with; refusing to {action}"
            )
        return None
    user = api.check_credentials()
    log.info("zendesk_credentials_ok", user_id=user.get("id"), role=user.get("role"))
    return require_clock_agrees(
        clock(), api.server_time(), action=action, need_evidence=need_evidence
    )
