"""Which redirects snapzen follows: GETs to the same origin, a few hops; nothing else, ever.

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
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests

from snapzen.clients.origin import origin_of, sent_url
from snapzen.support.errors import ProtocolError

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_SAME_ORIGIN_REDIRECTS = 5
FOLLOWED_METHODS = frozenset({"GET", "HEAD"})


class RedirectRefusedError(ProtocolError):
    """A 3xx answer snapzen will not follow (another origin, a write, or too many hops)."""


def location(response: requests.Response) -> str | None:
    """The redirect target of a 3xx answer, absolute; None when it is not a redirect.

    Read as requests' ``Session.get_redirect_target`` reads it (http.client decodes headers
    as latin-1; a UTF-8 ``Location`` is re-read as UTF-8), resolved against the answering URL."""
    if response.status_code not in REDIRECT_STATUSES:
        return None
    raw = response.headers.get("Location")
    if raw is None:
        return None
    try:
        target = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        target = raw
    return urljoin(response.url or "", target)


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
