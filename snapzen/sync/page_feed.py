"""The page feed: background readers that fetch SnapEngage windows and hand their pages,
staged, to the pass's thread through a bounded queue; and the fetch's progress, from which
the cases still to come are estimated.

Readers do HTTP, JSON decoding and validation only (``CasePreparer.stage`` is pure); every
database write stays on the pass's thread. Validating there took ~0.4 s of the pass's
thread at 10,000 chats (bench/RESULTS.md, v8).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from snapzen.sync.contracts import ExecutorFactory, Source, Window, thread_pool
from snapzen.sync.tuning import DEFAULT_TUNING, Tuning


@dataclass
class FetchProgress:
    """A fetch's progress, to estimate the cases it has yet to bring (``poll_plan.budget``):
    the windows read to their end give the average per window."""

    expected: int | None = None  # windows the fetch reads at most; None: not known
    fetched: int = 0  # cases fetched so far
    ended: int = 0  # windows read to their end
    ended_cases: int = 0  # cases fetched in those

    def window_ended(self, cases: int) -> None:
        self.ended += 1
        self.ended_cases += cases

    def still_to_come(self) -> int:
        """Cases the windows not yet read to their end should still bring (0 while no
        window has ended, or when the number of windows is not known)."""
        if not self.expected or not self.ended or self.ended >= self.expected:
            return 0
        average = self.ended_cases / self.ended
        in_unfinished = self.fetched - self.ended_cases
        return max(0, round(average * (self.expected - self.ended)) - in_unfinished)


@dataclass(frozen=True)
class WindowEnd:
    """Handed over by a reader after a window's last page."""

    window: Window


class PageFeed:
    """Background readers for ``Pipeline.fetch_window_groups``: each window added is one task
    on an executor of ``fetch_threads`` workers (from ``executor_factory``; a test passes an
    inline one and reads without threads), which iterates the window's pages and hands them
    over through a bounded queue. Windows can be added while it runs (``add``). A reader's
    exception is handed over too and re-raised on the pass's thread (that window stops; the
    pass fails). Leaving the ``with`` block (normally, on an error, or on a simulated crash)
    tells the readers to stop and waits for them."""

    def __init__(
        self,
        source: Source,
        stage: Callable[[str, Any], Any] | None = None,
        tuning: Tuning = DEFAULT_TUNING,
        executor_factory: ExecutorFactory = thread_pool,
    ) -> None:
        self._source = source
        # Applied by the reader to each case of a page (widget id, raw case) before the page
        # is handed over; without it the page's raw cases are handed over as they came.
        self._stage = stage
        self._pending = 0  # windows added whose end the pass's thread has not seen yet
        self._waiting = 0  # windows added that no reader has started (shared: a lock)
        self._lock = threading.Lock()
        # maxsize 0 is unbounded: only for a test that reads inline (nothing would drain it).
        self._pages: queue.Queue[object] = queue.Queue(maxsize=tuning.page_queue_depth)
        self._stop = threading.Event()
        self._executor = executor_factory(tuning.fetch_threads, "snapzen-fetch")
        self._tasks: list[Future[None]] = []
        self._ended: list[Window] = []  # windows read to their end, not yet taken

    def __enter__(self) -> PageFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        while not all(task.done() for task in self._tasks):
            with contextlib.suppress(queue.Empty):  # unblock a reader waiting to put a page
                self._pages.get(timeout=0.05)

    def add(self, windows: Sequence[Window]) -> None:
        with self._lock:
            self._waiting += len(windows)
        self._pending += len(windows)
        for window in windows:
            self._tasks.append(self._executor.submit(self._read, window))

    @property
    def queued(self) -> int:
        """Windows added and not yet taken by a reader."""
        with self._lock:
            return self._waiting

    @property
    def finished(self) -> bool:
        """Every window added was read to its end and every page handed over."""
        return self._pending == 0

    def take_ended(self) -> list[Window]:
        """The windows read to their end since the last call (their last page taken)."""
        ended, self._ended = self._ended, []
        return ended

    def get(self, timeout: float | None) -> tuple[Window, list[Any]] | None:
        """The next (window, its page's cases, staged if the feed stages), or None when
        ``timeout`` passed without one (or a window just ended)."""
        try:
            item = self._pages.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, WindowEnd):
            self._pending -= 1
            self._ended.append(item.window)
            return None
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, tuple)
        return item

    def more(self, limit: int) -> list[tuple[Window, list[Any]]]:
        """Pages already waiting (at most ``limit``), without waiting for any; the end of
        a window is noted on the way, as by ``get``."""
        pages: list[tuple[Window, list[Any]]] = []
        while len(pages) < limit and not self._pages.empty():
            item = self.get(0)
            if item is not None:
                pages.append(item)
        return pages

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, window: Window) -> None:
        """One window, on a reader: its pages, then its end (or the error that stopped it)."""
        with self._lock:
            self._waiting -= 1
        if self._stop.is_set():
            return
        try:
            for page in self._source.iter_pages(*window):
                cases = page.cases
                del page  # with a stage function, only the staged page is kept
                if self._stage is not None:
                    cases = [self._stage(window[0], raw) for raw in cases]
                if not self._put((window, cases)):
                    return
        except BaseException as exc:  # handed to the pass's thread, which decides
            self._put(exc)
            return
        self._put(WindowEnd(window))


def per_widget(fetched: dict[Window, int], widgets: Iterable[str] = ()) -> dict[str, int]:
    """Cases fetched per widget (every one of ``widgets`` listed, 0 if none were)."""
    totals = dict.fromkeys(widgets, 0)
    for (widget, _, _), count in fetched.items():
        totals[widget] = totals.get(widget, 0) + count
    return totals
