"""The Art. 12(3) clock as pure arithmetic: one month from receipt, moved by pauses and one
extension of up to two further months; answered after the deadline is late for ever."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from snapzen.ledger.rights.requests import (
    CLOSED,
    EXTENDED,
    PAUSED,
    RESUMED,
    Clock,
    ClockRefused,
    add_months,
)

D = date.fromisoformat


def replay(received: date, steps: list[tuple[Any, ...]]) -> Clock:
    """The clock after every step (its event, day and months), in order (a step refused
    raises ClockRefused)."""
    clock = Clock(received)
    for step in steps:
        clock = clock.apply(*step)
    return clock


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2026-10-01", 1, "2026-11-01"),
        ("2026-01-31", 1, "2026-02-28"),  # clamped to the month's end
        ("2028-01-31", 1, "2028-02-29"),  # leap year
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-12-15", 1, "2027-01-15"),  # over the year's end
        ("2026-11-30", 3, "2027-02-28"),
        ("2026-01-31", 3, "2026-04-30"),
    ],
)
def test_add_months_clamps_to_the_month_end(day: str, months: int, expected: str) -> None:
    assert add_months(D(day), months) == D(expected)


@pytest.mark.parametrize(
    ("received", "steps", "deadline", "status", "late"),
    [
        ("2026-10-01", [], "2026-11-01", "open", False),
        ("2026-01-31", [], "2026-02-28", "open", False),
        # a 10-day pause for proof of identity moves the deadline 10 days
        ("2026-10-01", [(PAUSED, "2026-10-05"), (RESUMED, "2026-10-15")], "2026-11-11", "open",
         False),
        # two pauses add up
        ("2026-10-01", [(PAUSED, "2026-10-02"), (RESUMED, "2026-10-04"),
                        (PAUSED, "2026-10-10"), (RESUMED, "2026-10-13")], "2026-11-06", "open",
         False),
        # extended by two further months: three months from receipt
        ("2026-10-01", [(EXTENDED, "2026-10-20", 2)], "2027-01-01", "open", False),
        ("2026-01-31", [(EXTENDED, "2026-02-01", 2)], "2026-04-30", "open", False),
        ("2026-10-01", [(EXTENDED, "2026-10-20", 1)], "2026-12-01", "open", False),
        # pause and extension together
        ("2026-10-01", [(PAUSED, "2026-10-05"), (RESUMED, "2026-10-08"),
                        (EXTENDED, "2026-10-20", 2)], "2027-01-04", "open", False),
        # the example: received 2026-10-01, answered 2026-12-06 -> late
        ("2026-10-01", [(CLOSED, "2026-12-06")], "2026-11-01", "closed", True),
        ("2026-10-01", [(CLOSED, "2026-11-01")], "2026-11-01", "closed", False),  # on the day
        ("2026-10-01", [(CLOSED, "2026-11-02")], "2026-11-01", "closed", True),
        # the same answer date is on time once extended
        ("2026-10-01", [(EXTENDED, "2026-10-30", 2), (CLOSED, "2026-12-06")], "2027-01-01",
         "closed", False),
        # closed while paused: the pause ends with the answer
        ("2026-10-01", [(PAUSED, "2026-10-25"), (CLOSED, "2026-11-20")], "2026-11-27", "closed",
         False),
        ("2026-10-01", [(PAUSED, "2026-10-25")], "2026-11-01", "paused", False),
    ],
)  # fmt: skip
def test_the_deadline_moves_with_pauses_and_the_extension(
    received: str, steps: list[tuple[Any, ...]], deadline: str, status: str, late: bool
) -> None:
    clock = replay(D(received), [(s[0], D(s[1]), *s[2:]) for s in steps])
    assert clock.status == status
    assert clock.closed_late is late
    if status != "paused":
        assert clock.deadline() == D(deadline)
    else:  # a pause in progress moves the deadline day by day
        assert clock.deadline(D("2026-10-25")) == D(deadline)
        assert clock.deadline(D("2026-11-04")) == D("2026-11-11")


def test_overdue_only_when_open_and_past_the_deadline() -> None:
    clock = replay(D("2026-10-01"), [])
    assert not clock.overdue(D("2026-11-01"))
    assert clock.overdue(D("2026-11-02"))
    paused = clock.apply(PAUSED, D("2026-10-20"))
    assert not paused.overdue(D("2027-06-01"))  # the clock is stopped
    closed = clock.apply(CLOSED, D("2026-12-06"))
    assert not closed.overdue(D("2027-06-01")) and closed.closed_late


@pytest.mark.parametrize(
    ("steps", "refusal"),
    [
        ([(EXTENDED, "2026-10-10", 2), (EXTENDED, "2026-10-11", 1)], "already extended"),
        ([(EXTENDED, "2026-10-10", 3)], "1 or 2 further months"),
        ([(EXTENDED, "2026-11-02", 2)], "has passed"),  # too late to extend
        ([(PAUSED, "2026-10-10"), (PAUSED, "2026-10-11")], "already paused"),
        ([(RESUMED, "2026-10-10")], "not paused"),
        ([(CLOSED, "2026-10-10"), (PAUSED, "2026-10-11")], "closed on 2026-10-10"),
        ([(CLOSED, "2026-10-10"), (CLOSED, "2026-10-11")], "closed on 2026-10-10"),
        ([(PAUSED, "2026-09-30")], "before the request was received"),
    ],
)
def test_steps_that_make_no_sense_are_refused(steps: list[tuple[Any, ...]], refusal: str) -> None:
    with pytest.raises(ClockRefused, match=refusal):
        replay(D("2026-10-01"), [(s[0], D(s[1]), *s[2:]) for s in steps])
