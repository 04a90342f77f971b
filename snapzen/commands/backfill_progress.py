"""Backfill progress, counted (``Tally``) and, off a terminal, told as JSON log lines at a
fixed interval (``JsonProgress``; snapzen.cli.render draws the bar on a terminal), with the
log file the lines go to while the bar is drawn.

Both count windows (one widget on one day) as each is read to its end, and cases fetched and
tickets created as they happen (``tick`` from the pass), and name the day being read
(``day_started``); ``window_done`` (a slice recorded) brings the counts in line with the
backfill's own totals. Nothing shown ever goes backwards: an interrupted slice's windows stay
counted as read (``windows_done``) while ``windows_recorded`` says what a rerun will skip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TextIO


class Counts(Protocol):
    """What the progress shows of a pass's counts (snapzen.sync.pipeline.Counts)."""

    fetched: int
    created: int


@dataclass
class Tally:
    """What both renderers show; updated on the pass's thread, read by the renderer's.
    Every change calls ``changed``, where a renderer shows it."""

    total: int = 0
    done: int = 0  # windows read to their end (or already finished before this run)
    recorded: int = 0  # windows recorded as finished (a rerun skips them)
    fetched: int = 0
    created: int = 0
    day: date | None = None

    def changed(self) -> None:
        """Nothing to show here; the renderers below show the change."""

    def start(self, total: int, skipped: int) -> None:
        self.total, self.done, self.recorded = total, skipped, skipped

    def tick(self, what: str, n: int) -> None:
        if what == "fetched":
            self.fetched += n
        elif what == "created":
            self.created += n
        elif what == "window":
            self.done = min(self.total, self.done + n)
        self.changed()

    def day_started(self, day: date) -> None:
        """The pass began reading ``day`` (days run oldest first)."""
        self.day = max(self.day, day) if self.day else day
        self.changed()

    def window_done(self, day: date, widgets: Sequence[str], counts: Counts) -> None:
        self.recorded += len(widgets)
        self.done = max(self.done, self.recorded)
        self.day = max(self.day, day) if self.day else day
        # The backfill's own totals; never below what the ticks already showed.
        self.fetched = max(self.fetched, counts.fetched)
        self.created = max(self.created, counts.created)
        self.changed()

    def finish(self) -> None:
        """Nothing to change: an interrupted slice's windows were read (done) but not recorded
        (the rerun redoes them), which ``recorded`` already says; the bar does not go back."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows_done": self.done,
            "windows_recorded": self.recorded,
            "windows_total": self.total,
            "fetched": self.fetched,
            "created": self.created,
            "day": self.day.isoformat() if self.day else None,
        }


class JsonProgress(Tally):
    """A ``backfill_progress`` log line (level, UTC timestamp, run id) every ``every``
    seconds from a timer thread, whether or not a window ended meanwhile, plus one at the
    start and one at the end; ``every=0``: one line per change."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None
        self._lock = threading.Lock()

    def _emit(self) -> None:
        from snapzen.support.log import get_logger

        with self._lock:
            get_logger("snapzen.backfill").info("backfill_progress", **self.as_dict())

    def _beat(self) -> None:
        while not self._stopped.wait(self.every):
            self._emit()

    def changed(self) -> None:
        if self.every <= 0:
            self._emit()

    def start(self, total: int, skipped: int) -> None:
        super().start(total, skipped)
        self._emit()
        if self.every > 0:
            self._timer = threading.Thread(target=self._beat, name="progress", daemon=True)
            self._timer.start()

    def finish(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.join()
        self._emit()


class CountingFile:
    """A log file that counts the warnings and errors written to it."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.problems = 0

    def write(self, text: str) -> int:
        if '"level": "warning"' in text or '"level": "error"' in text:
            self.problems += 1
        return self.handle.write(text)

    def flush(self) -> None:
        self.handle.flush()


@contextmanager
def log_file(path: Path) -> Iterator[CountingFile]:
    """Log lines appended to ``path`` while the bar is drawn."""
    from snapzen.support.atomic import open_private
    from snapzen.support.log import logs_to

    with open_private(path) as handle:  # 0600: log lines may name cases
        counting = CountingFile(handle)
        with logs_to(counting):  # type: ignore[arg-type]
            yield counting
