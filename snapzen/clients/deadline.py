"""A deadline on the whole answer of a request, its status line and headers included.

``requests`` only has a per-read timeout: a server that sends one byte of its headers every
few seconds keeps a request (and the writer lock behind it) alive for ever without tripping
it. The body is read under the deadline by ``snapzen.clients.http``; this module bounds the
header phase: while a thread waits for a response inside :func:`answer_deadline`, a timer
shuts the connection's socket down when the deadline passes, so the blocked read returns and
the request fails as a cut connection. The caller then reports it as the deadline.

Why by hand: neither requests nor urllib3 offers a total deadline (urllib3's ``Timeout`` has
connect and per-read parts only); this is the smallest hook that adds one, on the connection
class urllib3 lets a pool choose.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()
T = TypeVar("T")


@contextmanager
def answer_deadline(deadline: float) -> Iterator[None]:
    """Responses awaited by this thread inside the block are cut at ``deadline`` (monotonic)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def _cut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


def _guarded(sock: socket.socket | None, read: Callable[[], T]) -> T:
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None or sock is None:
        return read()
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (sock,))
    timer.daemon = True
    timer.start()
    try:
        return read()
    finally:
        timer.cancel()


class _DeadlineHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        return _guarded(self.sock, super().getresponse)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        return _guarded(self.sock, super().getresponse)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """The default adapter, with connections that honour :func:`answer_deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
