"""The Art. 12(3) clock of a data-subject request, as pure arithmetic over its steps.

A request is answered "without undue delay and in any event within one month of receipt"; the
month may be extended "by two further months where necessary" once, with reasons given to the
person within the first month. While the controller waits for the person (proof of identity,
Art. 12(6), or a clarification) the clock stops: the days paused are added to the deadline.

No I/O here: ``snapzen.ledger.rights.requests`` folds the chained events of a request into
``Step``s and asks this module for the deadline, whether it is overdue and whether it was
answered late. The same events always give the same answer, so "closed late" never changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from snapzen.ledger.evidence.events import Event

# A step is named as the event that records it (``closed``: a ``request`` event closing it).
PAUSED, RESUMED, EXTENDED = Event.REQUEST_PAUSED, Event.REQUEST_RESUMED, Event.REQUEST_EXTENDED
RECEIVED, CLOSED = "received", "closed"
PAUSE_REASONS = ("identity", "clarification")
MAX_EXTENSION_MONTHS = 2


class ClockRefused(ValueError):
    """A step the request's state does not allow (pause twice, extend twice, ...)."""


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


@dataclass(frozen=True)
class Step:
    what: str  # received | request_paused | request_resumed | request_extended | closed
    day: date
    months: int = 0  # extended: how many further months (1 or 2)


@dataclass(frozen=True)
class Clock:
    received: date
    paused_days: int = 0  # days of finished pauses
    paused_since: date | None = None  # a pause in progress
    extended_months: int = 0
    closed_on: date | None = None

    def deadline(self, today: date | None = None) -> date:
        """Received + one month (+ the extension), + every day paused (up to ``today`` for
        a pause in progress: the deadline moves on while the clock is stopped)."""
        running = 0
        if self.paused_since is not None and today is not None:
            running = max((today - self.paused_since).days, 0)
        base = add_months(self.received, 1 + self.extended_months)
        return base + timedelta(days=self.paused_days + running)

    @property
    def status(self) -> str:
        if self.closed_on is not None:
            return "closed"
        return "paused" if self.paused_since is not None else "open"

    def overdue(self, today: date) -> bool:
        """Open (not paused, not closed) and past its deadline."""
        return self.status == "open" and today > self.deadline(today)

    @property
    def closed_late(self) -> bool:
        """Answered after its deadline: true for ever once so."""
        return self.closed_on is not None and self.closed_on > self.deadline(self.closed_on)

    def apply(self, step: Step) -> Clock:
        """The clock after ``step``; ClockRefused when the step makes no sense now."""
        if step.what == RECEIVED:
            raise ClockRefused("the request was already received")
        if self.closed_on is not None:
            raise ClockRefused(f"the request was closed on {self.closed_on}")
        if step.day < self.received:
            raise ClockRefused(f"{step.day} is before the request was received ({self.received})")
        if step.what == PAUSED:
            if self.paused_since is not None:
                raise ClockRefused(f"the request is already paused (since {self.paused_since})")
            return replace(self, paused_since=step.day)
        if step.what == RESUMED:
            if self.paused_since is None:
                raise ClockRefused("the request is not paused")
            days = self.paused_days + (step.day - self.paused_since).days
            return replace(self, paused_days=days, paused_since=None)
        if step.what == EXTENDED:
            return self._extended(step)
        if step.what == CLOSED:
            finished = self.apply(Step(RESUMED, step.day)) if self.paused_since else self
            return replace(finished, closed_on=step.day)
        raise ClockRefused(f"unknown step {step.what!r}")

    def _extended(self, step: Step) -> Clock:
        if self.extended_months:
            raise ClockRefused("the request was already extended (Art. 12(3) allows it once)")
        if not 1 <= step.months <= MAX_EXTENSION_MONTHS:
            raise ClockRefused(f"an extension is 1 or {MAX_EXTENSION_MONTHS} further months")
        if step.day > self.deadline(step.day):
            raise ClockRefused(
                f"the deadline {self.deadline(step.day)} has passed: Art. 12(3) requires the "
                "person to be told of an extension within the first deadline"
            )
        return replace(self, extended_months=step.months)


def replay(received: date, steps: Iterable[Step]) -> Clock:
    """The clock after every step, in order (a step refused raises ClockRefused)."""
    clock = Clock(received)
    for step in steps:
        clock = clock.apply(step)
    return clock
