"""Where a credential may go: the origin check for URLs that carry an API token.

A URL is judged on the form requests will actually send, never on the text as written:
``requests`` prepares it (urllib3's parser, which treats ``\\`` as the end of the authority
where ``urllib.parse`` does not), and the prepared URL is then read by both urllib3 and
``urllib.parse`` (the adapter picks its connection pool with the latter). Both readings must
give exactly the configured scheme, host and port, and the URL must carry no userinfo at all,
so ``http://good\\@evil/``, ``http://good@evil/``, ``http://good:443@evil/`` and friends are
all refused before any byte (and the token) leaves.

Redirects are the other way a token travels. ``snapzen.clients.http`` sends every request with
``allow_redirects=False`` and decides itself (``snapzen.clients.redirects``: same-origin GETs
only). ``CredentialSafeSession`` is the second line: it reports no redirect target to requests'
own machinery, so even a call with ``allow_redirects=True`` follows nothing (and requests
never reads a redirect's body outside the size cap), and should anything rebuild a redirected
request it drops the ``Authorization`` header on any change of scheme, host or port (requests
itself keeps it on an http -> https upgrade of the same host, and on some port changes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from urllib3.util import parse_url

from snapzen.clients.deadline import DeadlineAdapter
from snapzen.support.errors import ProtocolError

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


# Transport adapters every session below mounts, by URL prefix (requests picks the longest
# matching prefix): how a test serves a base URL from an app in-process (the sandbox's
# snapzen.sandbox.inprocess.WsgiAdapter), as httpx's ``mounts=`` does. Empty in production.
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
    ``snapzen.clients.deadline.answer_deadline`` (headers included)."""

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
