"""A second process that prepares stored cases (``CasePreparer.prepare_stored``: decode,
validate, decide consent, build the ticket), so that the pass's thread keeps only the I/O.

Why a process: preparing is pure Python (~200 µs a case with its decoding), and the GIL lets
one thread run Python at a time. At 10,000 chats the pass's thread was busy on one core for
most of the run while the other core was half idle (bench/RESULTS.md, v7).

Why by hand: ``multiprocessing``'s spawn start method would re-import snapzen's CLI module in
the child and start a resource-tracker process (a first version doing so reached 166 MB of
RSS across snapzen's processes); fork would copy the parent's heap. Here the child is a plain
``python -m snapzen.sync.prepare_child FD`` importing only what preparing needs, talking over a
socket pair with ``multiprocessing.connection`` (pickled, length-prefixed frames).

Protocol: requests answered in order, each answer naming its request's number:
    parent -> child  ("init", settings, ledger_key, database path)   once, first
    parent -> child  (number, [(case id, widget id), ...])           a request
    child -> parent  (number, "ok", [Prepared, ...])  same order and length,
                     or (number, "error", one line)
The child reads each case's stored payload from the database itself (read-only: WAL lets it
read while the parent writes), so a request is a few KB and at most a few are out at once
(``Tuning.prepare_ahead_batches``, ~7 KB each): far below a socket's buffer, so the parent's send
never blocks while the child is blocked sending it an answer.

Answers are large (a batch of encoded tickets, ~0.3 MB at 100 chats), larger than a socket
pair's default buffer (~0.2 MB on Linux). A thread in the parent (``_read_answers``) takes each
one off the socket as it comes, so the child is never blocked sending while the pass's thread
is busy elsewhere: read only when the pass needed a batch, the child spent ~45 % of a 10,000-
chat run blocked in ``send`` and ran only about one batch ahead instead of
``prepare_ahead_batches`` (bench/RESULTS.md, v8). The frames are unpickled on the pass's thread.

Nothing here writes the database: a request whose answer is lost costs only its work, and the
parent can always prepare the same cases itself (what it does when the child fails).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING

from snapzen.support.errors import SnapzenError
from snapzen.support.scrub import one_line
from snapzen.sync.prepare import Prepared

if TYPE_CHECKING:
    from snapzen.support.settings import Settings

# A request's answer taking longer than this means the child is stuck: it is stopped and the
# parent prepares the cases itself. (A request is at most a few batches: normally ~20 ms.)
REPLY_TIMEOUT_SECONDS = 60.0
# How long ``close`` waits for the child to exit after its socket closed, before killing it.
EXIT_WAIT_SECONDS = 2.0


class WorkerError(SnapzenError):
    """The prepare worker cannot be used (did not start, died, stuck, answered nonsense);
    the pass prepares the cases itself. Never fatal."""


class RequestFailed(WorkerError):
    """The worker refused one request (an unexpected error while preparing it); it is still
    usable. Preparing those cases in the pass's thread shows the real error."""


class PrepareWorker:
    """The parent's handle on one child process."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        conn: Connection,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._process = process
        self._now = monotonic  # times the requests, for ``stuck``
        self._conn = conn
        self._sent_at: deque[float] = deque()  # when each unanswered request was sent
        self._number = 0  # of the last request sent
        self.answered = 0  # requests answered so far (0: maybe still starting)
        # Set once anything went wrong: the answers may be out of step with the requests,
        # so nobody may use it again (a backfill's later slices prepare on their own).
        self.broken = False
        # Answers read off the socket by _read_answers, not yet taken by receive (raw
        # pickled frames, oldest first); _ended: how reading ended (EOF, a socket error).
        self._frames: deque[bytes] = deque()
        self._ended: BaseException | None = None
        self._arrived = threading.Condition()
        self._reader = threading.Thread(
            target=self._read_answers, name="snapzen-prepare-answers", daemon=True
        )
        self._reader.start()

    def _read_answers(self) -> None:
        """On its own thread: every answer frame into ``_frames`` as soon as it arrives
        (the read waits without the GIL), until the child closes or the socket does."""
        while True:
            try:
                frame = self._conn.recv_bytes()
            except BaseException as exc:  # EOF, closed or reset socket: nothing more comes
                with self._arrived:
                    self._ended = exc
                    self._arrived.notify_all()
                return
            with self._arrived:
                self._frames.append(frame)
                self._arrived.notify_all()

    @classmethod
    def start(
        cls,
        settings: Settings,
        ledger_key: bytes,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PrepareWorker:
        """Start the child and send it what it needs; WorkerError if that fails."""
        ours, theirs = socket.socketpair()
        conn = Connection(ours.detach())
        child_fd = theirs.detach()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "snapzen.sync.prepare_child", str(child_fd)],
                pass_fds=(child_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                # Its own process group: Ctrl-C in a terminal reaches the pass, which decides
                # how to end; this process ends when the pass closes the socket (or dies).
                process_group=0,
            )
        except OSError as exc:
            conn.close()
            raise WorkerError(f"cannot start the prepare worker: {exc}") from None
        finally:
            with contextlib.suppress(OSError):
                os.close(child_fd)  # the child's copy is its own now
        worker = cls(process, conn, monotonic)
        try:
            conn.send(("init", settings, ledger_key, str(settings.ledger.path)))
        except (OSError, ValueError) as exc:
            worker.close()
            raise WorkerError(f"cannot reach the prepare worker: {exc}") from None
        return worker

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        """The child's exit code once it ended and was waited for (``close``), else None."""
        return self._process.returncode

    @property
    def waiting(self) -> int:
        return len(self._sent_at)

    def stuck(self) -> bool:
        """The oldest request without an answer has waited REPLY_TIMEOUT_SECONDS. Answers
        that came and wait to be taken do not count (a pass paused by the rate limit may
        leave them there a while)."""
        with self._arrived:
            answered = len(self._frames)
        if answered >= len(self._sent_at):
            return False
        return self._now() - self._sent_at[answered] > REPLY_TIMEOUT_SECONDS

    def submit(self, cases: Sequence[tuple[str, str]]) -> None:
        """Ask for ``(case id, widget id)`` pairs to be prepared; answered by ``receive``."""
        if self.broken:
            raise WorkerError("prepare worker out of use after an earlier failure")
        try:
            self._conn.send((self._number + 1, list(cases)))
        except (OSError, ValueError) as exc:
            self.broken = True
            raise WorkerError(f"prepare worker unreachable: {exc}") from None
        self._number += 1
        self._sent_at.append(self._now())

    def has_answer(self) -> bool:
        """True when ``receive`` would not wait (an answer, or the end, is there)."""
        with self._arrived:
            return bool(self._sent_at) and (bool(self._frames) or self._ended is not None)

    @property
    def answers_waiting(self) -> int:
        """Answers the child has sent that ``receive`` has not taken yet."""
        with self._arrived:
            return len(self._frames)

    def receive(self, timeout: float = REPLY_TIMEOUT_SECONDS) -> list[Prepared]:
        """The oldest request's answer. RequestFailed: that request only; WorkerError: the
        worker is gone or out of step (it is then ``broken``: stop using it)."""
        if not self._sent_at or self.broken:
            raise WorkerError("no answer can be read from the prepare worker")
        expected = self._number - len(self._sent_at) + 1
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._frames or self._ended is not None, timeout):
                self.broken = True
                raise WorkerError(f"prepare worker gave no answer within {timeout:.0f} s")
            frame = self._frames.popleft() if self._frames else None
        if frame is None:
            self.broken = True
            # The child's exit is what ended the socket, usually: wait a moment for its code.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=0.2)
            code = self._process.poll()
            raise WorkerError(
                f"prepare worker stopped (exit code {code})"
                if code is not None
                else one_line(f"prepare worker unreachable: {self._ended!r}")
            )
        try:
            reply = ForkingPickler.loads(frame)
        except BaseException:  # unpicklable answer, Ctrl-C in the middle of one: out of step
            self.broken = True
            raise
        self._sent_at.popleft()
        self.answered += 1
        if not (isinstance(reply, tuple) and len(reply) == 3 and reply[0] == expected):
            self.broken = True
            raise WorkerError("prepare worker sent an answer out of step")
        if reply[1] == "ok":
            return list(reply[2])
        if reply[1] == "error":
            raise RequestFailed(f"prepare worker: {reply[2]}")
        self.broken = True
        raise WorkerError("prepare worker sent an unreadable answer")

    def discard_answers(self, timeout: float = REPLY_TIMEOUT_SECONDS) -> None:
        """Read and drop the answers still owed (a pass ended with requests out), so the
        next pass using this worker gets its own. WorkerError if that fails."""
        while self._sent_at:
            try:
                self.receive(timeout)
            except RequestFailed:
                continue

    def abandon(self) -> None:
        """Out of use for good (the pass gave up on it): marked broken, process stopped."""
        self.broken = True
        with contextlib.suppress(OSError):
            self._process.kill()

    def close(self) -> None:
        """Stop the child (the end of its socket is its signal to exit); kill it if it
        lingers. The socket is shut down before it is closed: a close alone would neither
        wake the answer reader blocked in its read nor show the child the end."""
        with (
            contextlib.suppress(OSError, ValueError),
            socket.socket(fileno=os.dup(self._conn.fileno())) as end,
        ):
            end.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout=EXIT_WAIT_SECONDS)
        self._conn.close()
        try:
            self._process.wait(timeout=EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
