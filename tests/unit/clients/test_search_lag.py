"""LagWindow: the tickets search may not show yet, read from the incremental export once for a
command run and brought up to date (only what changed since) at most once a minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snapzen.clients.search_lag import MIN_AGE, REFRESH, SEARCH_LAG, LagWindow, recently_changed
from snapzen.support.errors import BadRequestError

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class Export:
    """The incremental export as a list of changes (when, ticket state), oldest first."""

    def __init__(self) -> None:
        self.changes: list[tuple[datetime, dict[str, Any]]] = []
        self.asked: list[datetime] = []
        self.refuse = False

    def change(self, at: datetime, **ticket: Any) -> None:
        self.changes.append((at, ticket))

    def incremental_tickets(self, start_time: int) -> Iterator[list[dict[str, Any]]]:
        start = datetime.fromtimestamp(start_time, UTC)
        self.asked.append(start)
        if self.refuse:
            raise BadRequestError("zendesk GET incremental: start_time must be in the past")
        yield [dict(t) for at, t in self.changes if at >= start]


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def test_read_once_then_only_what_changed_since_at_most_once_a_minute() -> None:
    export, clock = Export(), Clock()
    export.change(T0 - timedelta(hours=1), id=1, submitter_id=7)  # older than the window
    export.change(T0 - timedelta(minutes=3), id=2, submitter_id=7)
    window = LagWindow(export, clock)
    assert list(window.tickets()) == [2]
    clock.at += REFRESH - timedelta(seconds=1)
    export.change(clock.at - timedelta(seconds=30), id=3, submitter_id=7)
    assert list(window.tickets()) == [2]  # not asked again yet
    clock.at += timedelta(seconds=1)
    assert list(window.tickets()) == [2, 3]
    assert export.asked == [T0 - SEARCH_LAG, T0 - MIN_AGE]
    # A long-lived client: once the window reaches back twice SEARCH_LAG it is read whole
    # again, and what search has indexed long since is no longer held.
    clock.at = T0 + SEARCH_LAG + timedelta(minutes=1)
    assert list(window.tickets()) == []
    assert export.asked[-1] == clock.at - SEARCH_LAG


def test_search_less_what_was_deleted_since_plus_what_it_has_not_indexed_yet() -> None:
    export, clock = Export(), Clock()
    export.change(T0 - timedelta(minutes=5), id=2, submitter_id=7, status="open")
    export.change(T0 - timedelta(minutes=4), id=3, submitter_id=7, status="open")
    export.change(T0 - timedelta(minutes=2), id=2, submitter_id=7, status="deleted")
    export.change(T0 - timedelta(minutes=1), id=4, submitter_id=8, status="open")
    export.change(T0 - timedelta(minutes=1), id=5, submitter_id=7, status="open")
    now = {3: {"id": 3, "submitter_id": 7}}  # 5 was deleted after the window was read
    reread: list[list[int]] = []

    def show_many(ids: list[int]) -> list[dict[str, Any]]:
        reread.append(ids)
        return [now[i] for i in ids if i in now]

    searched = {1: {"id": 1, "submitter_id": 7}, 2: {"id": 2, "submitter_id": 7}}
    window = LagWindow(export, clock)
    merged = window.merged(searched, lambda t: t.get("submitter_id") == 7, show_many)
    # 1: search alone knows it; 2: deleted since search indexed it; 3: not indexed yet; 4:
    # someone else's; 5: the window's state is older than Zendesk's now.
    assert list(merged) == [1, 3] and reread == [[3, 5]]
    assert window.merged({1: {"id": 1}}, lambda t: False, show_many) == {1: {"id": 1}}
    assert reread == [[3, 5]]  # nothing to read again: no request


def test_a_refused_read_is_reported_not_answered_by_search_alone() -> None:
    export, clock = Export(), Clock()
    export.change(T0 - timedelta(minutes=1), id=3, submitter_id=7)
    export.refuse = True
    window = LagWindow(export, clock)
    with pytest.raises(BadRequestError, match="clock ahead"):
        window.merged({1: {"id": 1}}, lambda t: True, lambda ids: [])
    # init's count and reconciliation through search: search alone (with the warning).
    assert list(recently_changed(export, T0)) == [] and len(export.asked) == 2


def test_a_refused_read_is_read_again_from_where_it_started() -> None:
    export, clock = Export(), Clock()
    window = LagWindow(export, clock)
    assert window.tickets() == {} and not window.unread
    clock.at += REFRESH
    export.refuse = True
    export.change(clock.at - timedelta(seconds=30), id=3, submitter_id=7)
    assert window.tickets() == {} and window.unread
    export.refuse = False
    clock.at += REFRESH
    # The next read starts where the refused one did: what it would have read is not missed.
    assert list(window.tickets()) == [3] and not window.unread
    assert export.asked == [T0 - SEARCH_LAG, T0 - MIN_AGE, T0 - MIN_AGE]
