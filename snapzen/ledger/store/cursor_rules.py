"""The cursor rules, in one place: which days a pass or a backfill reads, where a widget's
cursor goes after it, and which backfill days count as read whole. Pure functions, no I/O
(the cursors themselves are stored by ledger.outbox; the pass and `snapzen backfill` call these).

The local clock is the one input snapzen cannot check against anything else, and one run with
it days ahead used to move every cursor into the future for good (later windows started after
their end and fetched nothing, exit 0). So a cursor advances on evidence only: never past the
newest chat actually read nor past today (UTC); a window never starts after its end; deletion
is refused when the clock is far beyond the newest time the ledger has seen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from snapzen.support import clock

# A chat may be dated a little ahead of our clock (two clocks); beyond this it is flagged.
FUTURE_SKEW = timedelta(hours=1)

# A run may start a little "before" the previous one (NTP steps, two hosts): not worth a shout.
CLOCK_BEHIND_TOLERANCE = timedelta(minutes=5)


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of ``moment`` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()


def next_cursor(
    *,
    current: date | None,
    fetched_until: date,
    holding: date | None,
    newest_read: date | None,
    today: date,
) -> date | None:
    """Where a widget's cursor goes after a complete pass.

    ``holding``: the first day with an unfinished case; ``newest_read``: the newest day of a
    chat the ledger holds for the widget (dated no later than ``today``). The cursor moves
    forward as before (never behind ``holding``), but is then capped at ``newest_read`` and
    ``today``: a pass whose clock ran ahead cannot move it beyond real data, and a cursor
    already in the future (left by such a run) is brought back. With no chat read yet the
    cursor does not advance (None stays None: the next window starts at what SnapEngage holds).
    """
    candidate = min(holding, fetched_until) if holding else fetched_until
    new = max(candidate, current) if current else candidate
    if newest_read is None:
        return min(current, today) if current else None
    return min(new, newest_read, today)


def oldest_held(today: date, retention_days: int) -> date:
    """The oldest day SnapEngage still holds chats for (its retention, counted from today)."""
    return today - timedelta(days=retention_days)


def snapengage_holds(started_on: date, day: date, retention_days: int) -> bool:
    """Whether SnapEngage may still hold a chat started on ``started_on``, on ``day``: through
    its start plus ``retention_days``, that last day included (it may not have deleted it
    yet, and the fetch window reads it). The access pack, the erasure response and the
    forgetting of erasure records all ask this."""
    return started_on >= oldest_held(day, retention_days)


def fetch_window(
    *, cursor: date | None, today: date, overlap_days: int, retention_days: int
) -> tuple[date, date]:
    """(first day, last day) to fetch: the cursor minus the overlap, never before what
    SnapEngage still holds; never starting after its end. A clock reading earlier than the
    cursor still fetches from the cursor minus the overlap up to the cursor (nothing skipped).
    """
    first = oldest_held(today, retention_days)
    if cursor is None:
        return first, today
    end = max(today, cursor)
    start = max(first, cursor - timedelta(days=overlap_days))
    return min(start, end), end


def check_clock(now: datetime, last_recorded: datetime | None) -> timedelta | None:
    """How far ``now`` reads earlier than the latest run start already recorded (beyond
    ``CLOCK_BEHIND_TOLERANCE``), or None when it does not."""
    if last_recorded is None or now >= last_recorded - CLOCK_BEHIND_TOLERANCE:
        return None
    return last_recorded - now


def deletion_clock_error(
    now: datetime, newest_seen: datetime | None, margin: timedelta
) -> str | None:
    """Why a deletion must not run with this clock, or None when it may.

    ``newest_seen``: the newest time the ledger recorded (the latest run start). A clock more
    than ``margin`` beyond it is more likely wrong than the ledger idle that long; deleting
    on it would destroy tickets years early."""
    if newest_seen is None or now - newest_seen <= margin:
        return None
    return (
        f"the clock reads {clock.format(now)}, more than "
        f"{margin.days} day(s) after the newest time the ledger has seen "
        f"({clock.format(newest_seen)}); refusing to delete. Check the "
        "system clock; if it is right, run `snapzen sync` first or raise "
        "transfer.clock_margin_days"
    )


UTC_TIMEZONE = "Etc/UTC"


def is_utc(timezone: str) -> bool:
    """Does SnapEngage, asked with this ``timezone``, return whole UTC days?"""
    return timezone.strip() in ("Etc/UTC", "UTC", "Etc/GMT", "GMT", "Etc/Zulu", "Zulu")


def backfill_day_finished(day: date, today: date, *, timezone: str, interrupted: bool) -> bool:
    """Does a backfill day just read count as finished (never read again by a later
    backfill)? Only a whole UTC day: asked in UTC, before today, the pass not stopped early."""
    return not interrupted and is_utc(timezone) and day < today
