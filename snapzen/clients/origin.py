"""Where a credential may go: the origin check for URLs that carry an API token.

A URL is judged on the form requests will actually send, never on the text as written:
``requests`` prepares it (urllib3's parser, which treats ``\\`` as the end of the authority
where ``urllib.parse`` does not), and the prepared URL is then read by both urllib3 and
``urllib.parse`` (the adapter picks its connection pool with the latter). Both readings must
give exactly the configured scheme, host and port, and the URL must carry no userinfo at all,
so ``http://good\\@evil/``, ``http://good@evil/``, ``http://good:443@evil/`` and friends are
all refused before any byte (and the token) leaves.

Redirects are the other way a token travels. ``snapzen.clients.http`` sends every request with
``allow_redirects=False`` and decides itself (``snapzen.clients.origin``: same-origin GETs
only). ``CredentialSafeSession`` is the second line: it reports no redirect target to requests'
own machinery, so even a call with ``allow_redirects=True`` follows nothing (and requests
never reads a redirect's body outside the size cap), and should anything rebuild a redirected
request it drops the ``Authorization`` header on any change of scheme, host or port (requests
itself keeps it on an http -> https upgrade of the same host, and on some port changes).

Which redirects snapzen follows: GETs to the same origin, a few hops; nothing else, ever.

Every request leaves with ``allow_redirects=False`` (``snapzen.clients.http``), so requests
never follows a ``Location`` on its own, and ``CredentialSafeSession`` (snapzen.clients.origin)
reports no redirect target to requests' machinery either. A 3xx answer (301, 302, 303, 307,
308) comes back to ``snapzen.clients.http``, which asks ``next_hop`` what to do:

- a GET (or HEAD) whose ``Location`` is on exactly the origin (scheme, host, port, as
  requests would send it) of the URL it was sent to is followed, at most
  ``MAX_SAME_ORIGIN_REDIRECTS`` times per request;
- anything else is refused before any byte goes to the target: the OAuth token POST (its body
  holds the client secret), the import POST (its body holds transcripts, names and emails),
  every PUT and DELETE, and any GET whose target is another origin (a next-page link or a
  proxy pointing elsewhere). A refused redirect is a ``RedirectRefusedError``: a
  ``ProtocolError``, so the run aborts with one line naming the status and the target's
  origin (scheme, host and port only: never its path or query, which may hold a cursor).

So no credential (header, body or query) and no request body is ever re-sent to another
origin, whatever the status.

A deadline on the whole answer of a request, its status line and headers included.

``requests`` only has a per-read timeout: a server that sends one byte of its headers every
few seconds keeps a request (and the writer lock behind it) alive for ever without tripping
it. Once a thread waits for a response inside :func:`answer_deadline`, a timer shuts the
connection's socket down when the deadline passes, so a blocked read (of the headers, or of
the body that ``snapzen.clients.http`` reads inside the same block) returns and the request
fails as a cut connection. The caller then reports it as the deadline.

Why by hand: neither requests nor urllib3 offers a total deadline (urllib3's ``Timeout`` has
connect and per-read parts only); this is the smallest hook that adds one, on the connection
class urllib3 lets a pool choose.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from snapzen.support.errors import PaginationLoopError, ProtocolError

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class OriginError(ProtocolError):
    """A URL that would carry a credential points somewhere other than the configured base."""


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


def sent_url(url: str) -> str:
    """The URL exactly as requests would send it (IDNA, percent-encoding, authority split)."""
    prepared = requests.Request("GET", url).prepare()
    return prepared.url or url


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of the URL as sent, or None when it carries userinfo or the two
    parsers that take part in sending it disagree about where it goes."""
    try:
        sent = sent_url(url)
        by_urllib3 = parse_url(sent)
        by_stdlib = urlsplit(sent)
        stdlib_port = by_stdlib.port
    except (ValueError, requests.exceptions.RequestException):
        return None
    if by_urllib3.auth is not None or by_stdlib.username is not None or "@" in by_stdlib.netloc:
        return None
    scheme = (by_urllib3.scheme or "").lower()
    first = (scheme, (by_urllib3.host or "").lower(), _port(scheme, by_urllib3.port))
    second = (
        by_stdlib.scheme.lower(),
        (by_stdlib.hostname or "").lower(),
        _port(by_stdlib.scheme.lower(), stdlib_port),
    )
    if first != second or not first[1]:
        return None
    return first


def require_origin(url: str, base: str, *, what: str) -> str:
    """The URL as it will be sent, when its origin is exactly ``base``'s; else OriginError.

    ``what`` names the URL in the error (never the URL itself: it may hold a cursor)."""
    expected = origin_of(base)
    if expected is None:
        raise OriginError(f"{what}: the configured base URL has no usable origin")
    actual = origin_of(url)
    if actual != expected:
        raise OriginError(
            f"{what} points outside {expected[0]}://{expected[1]}:{expected[2]}; "
            "refusing to send the API credentials there"
        )
    return sent_url(url)


def next_page(link: str, page_url: str, base: str, seen: set[str], what: str) -> str:
    """A next-page ``link`` (relative to ``page_url``) as it will be sent: on ``base``'s origin
    (OriginError), and none followed already (PaginationLoopError: it would loop for ever).
    ``what`` names the page in the errors."""
    url = require_origin(urljoin(page_url, link), base, what=f"{what}: next-page link")
    if url in seen:
        raise PaginationLoopError(f"{what}: next-page link repeats an earlier one")
    seen.add(url)
    return url


# Transport adapters every session below mounts, by URL prefix (requests picks the longest
# matching prefix): how a test serves a base URL from an app in-process (the sandbox's
# snapzen.sandbox.server.WsgiAdapter), as httpx's ``mounts=`` does. Empty in production.
_MOUNTS: dict[str, BaseAdapter] = {}


@contextmanager
def mounted(prefix: str, adapter: BaseAdapter) -> Iterator[BaseAdapter]:
    """Sessions created inside the block send requests for ``prefix`` to ``adapter``."""
    _MOUNTS[prefix] = adapter
    try:
        yield adapter
    finally:
        _MOUNTS.pop(prefix, None)


class CredentialSafeSession(requests.Session):
    """A session that follows no redirect on its own, never carries ``Authorization`` to
    another origin, and whose connections honour
    ``snapzen.clients.origin.answer_deadline`` (headers included)."""

    def __init__(self) -> None:
        super().__init__()
        for prefix in ("https://", "http://"):
            self.mount(prefix, DeadlineAdapter())
        for prefix, adapter in _MOUNTS.items():
            self.mount(prefix, adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """None: requests follows no redirect; snapzen.clients.http decides on each one."""
        return None

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        old, new = origin_of(old_url), origin_of(new_url)
        if old is None or old != new:
            return True
        strip: bool = super().should_strip_auth(old_url, new_url)  # type: ignore[no-untyped-call]
        return strip


# ---------------------------------------------------------------- redirects

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_SAME_ORIGIN_REDIRECTS = 5
FOLLOWED_METHODS = frozenset({"GET", "HEAD"})


class RedirectRefusedError(ProtocolError):
    """A 3xx answer snapzen will not follow (another origin, a write, or too many hops)."""


def location(response: requests.Response) -> str | None:
    """The redirect target of a 3xx answer, absolute; None when it is not a redirect.

    Read as requests' ``Session.get_redirect_target`` reads it (http.client decodes headers
    as latin-1; a UTF-8 ``Location`` is re-read as UTF-8), resolved against the answering URL."""
    raw = response.headers.get("Location") if response.status_code in REDIRECT_STATUSES else None
    if raw is None:
        return None
    with suppress(UnicodeError):
        raw = raw.encode("latin-1").decode("utf-8")
    return urljoin(response.url or "", raw)


def shown_origin(url: str) -> str:
    """``scheme://host:port`` of a URL for an error message: no userinfo, path or query."""
    origin = origin_of(url)
    if origin is not None:
        return f"{origin[0]}://{origin[1]}:{origin[2]}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "an unreadable URL"
    return f"{parts.scheme or '?'}://{host} (a URL with userinfo or an ambiguous authority)"


def next_hop(method: str, response: requests.Response, hops: int, where: str) -> str | None:
    """The URL to GET next for this answer, or None when it is not a redirect.

    ``hops``: redirects already followed for this request. Raises RedirectRefusedError for a
    redirect that must not be followed; ``where`` names the request (service and redacted
    endpoint) in that error."""
    status = response.status_code
    if status not in REDIRECT_STATUSES:
        return None
    target = location(response)
    if target is None:
        raise RedirectRefusedError(f"{where} answered HTTP {status} without a Location")
    shown = shown_origin(target)
    refused = f"{where} answered HTTP {status} redirecting to {shown}; not followed"
    if method.upper() not in FOLLOWED_METHODS:
        raise RedirectRefusedError(
            f"{refused}: a {method.upper()} is never redirected (its body and credentials "
            "stay where they were sent)"
        )
    here = origin_of(response.url or "")
    if here is None or origin_of(target) != here:
        raise RedirectRefusedError(
            f"{refused}: another origin than the request's; the credentials go nowhere else"
        )
    if hops >= MAX_SAME_ORIGIN_REDIRECTS:
        raise RedirectRefusedError(
            f"{refused}: more than {MAX_SAME_ORIGIN_REDIRECTS} redirects for one request"
        )
    return sent_url(target)


# ---------------------------------------------------------------- the answer's deadline

_local = threading.local()


@contextmanager
def answer_deadline(deadline: float) -> Iterator[None]:
    """Connections this thread awaits a response on inside the block are shut down at
    ``deadline`` (monotonic): the status line, the headers and the body read inside it."""
    cutters: list[_Cutter] = []
    previous = getattr(_local, "armed", None)
    _local.armed = (deadline, cutters)
    try:
        yield
    finally:
        _local.armed = previous
        for cutter in cutters:
            cutter.disarm()


class _Cutter:
    """Shuts a connection's socket down at the deadline unless disarmed first: a connection
    handed back to the pool (its answer read whole) may already carry another thread's
    request, which this deadline must never cut."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock: socket.socket | None = sock
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock, suppress(OSError):  # OSError: already closed, nothing to interrupt
            if self._sock is not None:
                self._sock.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> None:
        self._timer.cancel()
        with self._lock:  # a cut under way finishes first; none starts after this
            self._sock = None


def _arm(connection: Any) -> None:
    armed: tuple[float, list[_Cutter]] | None = getattr(_local, "armed", None)
    if armed is not None and connection.sock is not None:
        connection.cutter = _Cutter(connection.sock, armed[0])
        armed[1].append(connection.cutter)


class _DeadlineHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _arm(self)
        return super().getresponse()


class _DeadlineHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _arm(self)
        return super().getresponse()


def _disarmed(conn: Any) -> Any:
    if (cutter := getattr(conn, "cutter", None)) is not None:
        cutter.disarm()
    return conn


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        super()._put_conn(_disarmed(conn))


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        super()._put_conn(_disarmed(conn))


class DeadlineAdapter(HTTPAdapter):
    """The default adapter, with connections that honour :func:`answer_deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
