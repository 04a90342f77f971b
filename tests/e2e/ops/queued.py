"""Run the real CLI queued for the writer lock this test process holds: wait until it says
``writer_lock_waiting``, let the caller act, then collect how it ended.

Each of the child's two pipes has exactly one reader, a thread of its own. The version this
replaces read stderr on a thread and then called ``communicate()``, which read (and closed)
the same pipe: when ``communicate`` closed it between two of the thread's reads, the thread
died on "I/O operation on closed file" without its end-of-output mark, and the test waited
out its bound and failed with ``queue.Empty`` (1 run in ~100 in a loop here, more under
load), although the command had queued and finished correctly.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from typing import IO


class Queued:
    """``snapzen ARGS`` started now; its stderr lines arrive on ``lines`` (None at the end)."""

    def __init__(self, env: dict[str, str], args: list[str], bound: float) -> None:
        self.bound = bound
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "snapzen", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._out: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.lines.put(line)
        finally:
            self.lines.put(None)  # always: the reader must never wait out its bound

    def _drain(self, stream: IO[str]) -> None:
        self._out.append(stream.read())

    def until_waiting(self) -> None:
        """Block until the command logs ``writer_lock_waiting``; AssertionError (with what it
        printed) if it ends first. Kills it on any failure."""
        try:
            while True:
                line = self.lines.get(timeout=self.bound)
                assert line is not None, f"ended without queueing: {''.join(self.seen)}"
                self.seen.append(line)
                if "writer_lock_waiting" in line:
                    return
        except BaseException:
            self.kill()
            raise

    def finish(self) -> subprocess.CompletedProcess[str]:
        """Wait for the end; stdout and every stderr line (those before the wait too)."""
        self.proc.wait(timeout=self.bound)
        for thread in self._threads:
            thread.join(self.bound)
        while (line := self.lines.get(timeout=self.bound)) is not None:
            self.seen.append(line)
        out = "".join(self._out)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out,
                                           "".join(self.seen))  # fmt: skip

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=self.bound)
