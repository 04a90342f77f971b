"""The one HTTP boundary: a requests session, a response classifier and one retry policy.

Everything the APIs can do wrong is turned into a ``snapzen.support.errors`` exception here, so the
source, the sink and the pipeline never see a ``requests`` or ``tenacity`` exception.

Retry rules (one tenacity policy for every request):

- idempotent requests (GET, DELETE, token fetch) retry every ``RetriableError`` (429, 5xx, 409,
  network failures), waiting ``Retry-After`` when the server gave one (capped by
  ``max_wait_seconds``), else exponential backoff with jitter; after ``max_attempts`` tries
  ``RetriesExhausted`` names the endpoint and the last error;
- non-idempotent requests (``idempotent=False``: the import POST) retry only when the server
  certainly did not act: 429 (including TooManyJobs) and connection failures that happened
  before the request was sent. Any other failure that could have happened after the server
  acted (5xx even with ``Retry-After``, read timeout, reset, 409, malformed 2xx body) raises
  ``AmbiguousWriteError`` at once: the caller's outbox recovers it by lookup;
- definite rejections (401/403, 404, 422, other 4xx) are never retried, whatever the method;
- a 2xx body that cannot be decoded (malformed or truncated JSON) is retried like a 5xx for
  an idempotent request (a GET is safe to repeat), and is ambiguous for a non-idempotent one;
  JSON nested deeper than the decoder goes is a ProtocolError (repeating cannot help);
- redirects are never followed by requests: a GET follows its own origin a few hops, every
  other redirect is refused before anything is sent to its target (snapzen.clients.origin).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import requests
import tenacity
from requests import exceptions as rex
from tenacity import RetryCallState
from urllib3.exceptions import NewConnectionError

from snapzen import __version__
from snapzen.clients.origin import (
    CredentialSafeSession,
    RedirectRefusedError,
    answer_deadline,
    next_hop,
    require_origin,
)
from snapzen.support import clock, errors, jsoncodec
from snapzen.support.log import get_logger, scrub_personal
from snapzen.support.settings import HttpSettings

log = get_logger(__name__)

DEFAULT_USER_AGENT = f"snapzen/{__version__}"

# Query parameters whose values are never personal data and help when reading logs.
SAFE_QUERY_PARAMS = frozenset(
    {"start", "end", "widgetId", "timezone", "archive_immediately", "page", "per_page"}
)
# Zendesk 422 details can quote the offending value (an email address, a name): mask emails
# and keep the message short so an error column or log line never becomes a data dump.
_MAX_DETAIL_CHARS = 500


# ---------------------------------------------------------------- helpers


def redact_url(url: str) -> str:
    """Path plus parameter names; values replaced by '…' unless known to be harmless."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={v if k in SAFE_QUERY_PARAMS else '…'}" for k, v in pairs)
    return f"{parts.path or '/'}?{query}" if parts.query else parts.path or "/"


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Date``, ``Retry-After``) as an aware UTC datetime; None for junk."""
    try:
        moment = parsedate_to_datetime(value or "")
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or junk."""
    text = (value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        when = http_date(text)
        if when is None:
            return None
        seconds = (when - (now or clock.now())).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # some Zendesk endpoints nest {"title", "message"}
        error = error.get("title")
    return error if isinstance(error, str) else None


def _safe_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = scrub_personal(text)
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "…"


def _describe_body(body: Any) -> str:
    """Zendesk's error/description/details as one short line (empty when not JSON)."""
    if not isinstance(body, dict):
        return ""
    code = _error_code(body)
    parts = [_safe_text(code)] if code else []
    parts += [
        f"{key}: {_safe_text(body[key])}" for key in ("description", "details") if body.get(key)
    ]
    return "; ".join(parts)


def _endpoint_of(response: requests.Response) -> str:
    method = getattr(response.request, "method", None) or "?"
    return f"{method} {redact_url(response.url or '')}"


# ---------------------------------------------------------------- classifier


def classify(response: requests.Response, service: str) -> errors.SnapzenError | None:
    """Map a response to the error the caller should see; None for 1xx/2xx/3xx."""
    status = response.status_code
    if status < 400:
        return None
    try:  # error bodies may be text/plain or HTML: then no detail
        body = jsoncodec.loads_untrusted(lambda: json.loads(response.content or b""))
    except ValueError:  # malformed, unreadable (UnreadableJson) or not UTF-8
        body = None
    detail = _describe_body(body)
    suffix = f": {detail}" if detail else ""
    where = f"{service} {_endpoint_of(response)} answered HTTP {status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    # Zendesk's 30-job cap; its status is undocumented, so any 4xx with that body counts.
    if status < 500 and _error_code(body) == "TooManyJobs":
        return errors.TooManyJobsError(f"{where} (TooManyJobs){suffix}", retry_after)
    if status == 429:
        return errors.RateLimitedError(f"{where} (rate limited){suffix}", retry_after)
    if status >= 500:
        return errors.ServerError(f"{where}{suffix}", retry_after)
    if status in (401, 403):
        # The server's own reason is kept (scrubbed of emails): "Forbidden" for a token whose
        # OAuth scope does not cover the endpoint reads differently from a role problem.
        hint = (
            f"{service} refused our credentials; check the {service} API token or OAuth token"
            if status == 401
            else f"{service} refused this request; check the role of the account and, for "
            "OAuth, that the token's scope covers this endpoint"
        )
        return errors.AuthError(f"{where}: {hint}{suffix}", status)
    if status == 404:
        return errors.NotFoundError(f"{where} (not found){suffix}")
    if status == 409:
        return errors.ConflictError(f"{where} (conflict){suffix}", retry_after)
    if status == 422:
        return errors.InvalidRecordError(f"{where} (invalid record){suffix}")
    return errors.BadRequestError(f"{where}{suffix}")


def _sent_nothing(exc: rex.RequestException) -> bool:
    """True when the failure certainly happened before any byte of the request left.

    requests wraps urllib3's MaxRetryError(reason=NewConnectionError) in args[0]; walk the
    args, reasons and causes looking for a refused/failed connection attempt."""
    if isinstance(exc, rex.ConnectTimeout):
        return True
    stack: list[Any] = [exc] if isinstance(exc, rex.ConnectionError) else []
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(item, BaseException) and id(item) not in seen:
            seen.add(id(item))
            stack.extend([item.__cause__, getattr(item, "reason", None), *item.args])
    return False


# ---------------------------------------------------------------- client


class HttpClient:
    """One session per API with default timeouts, the classifier and the retry policy."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        service: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.service = service
        # Public so sources can pace pages with the same (injectable) sleep.
        self.sleep = sleep
        self.session = CredentialSafeSession()
        # Set by the API client that adds credentials: any request whose URL, as sent, is
        # not on this base's scheme, host and port is refused (OriginError) before it leaves.
        self.credential_base: str | None = None

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Send with retries; return a 1xx–3xx response or raise a snapzen error."""
        return cast(requests.Response, self._send(method, url, idempotent, False, kwargs))

    def request_json(self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        """``request`` and decode the body. An undecodable 2xx body is retried like a 5xx for
        an idempotent request (``RetriesExhausted`` once attempts run out); for a
        non-idempotent one, which the server may have acted on, it is an AmbiguousWriteError."""
        return self._send(method, url, idempotent, True, kwargs)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request_json("GET", url, **kwargs)

    def _send(
        self, method: str, url: str, idempotent: bool, decode: bool, kwargs: dict[str, Any]
    ) -> Any:
        """The retry loop around one request; with ``decode`` each attempt also decodes the
        body, and the decoded JSON is returned instead of the response."""
        method, settings = method.upper(), self.settings
        if self.credential_base is not None:
            require_origin(url, self.credential_base, what=f"{self.service} {method} URL")
        read_timeout = min(settings.timeout_seconds, settings.total_timeout_seconds)
        kwargs.setdefault("timeout", (settings.connect_timeout_seconds, read_timeout))
        kwargs["stream"] = True  # the body is read by _read_bounded, under the deadline and cap
        kwargs["allow_redirects"] = False  # _Attempt decides (snapzen.clients.origin)
        kwargs["headers"] = {"User-Agent": DEFAULT_USER_AGENT, **(kwargs.get("headers") or {})}
        attempt = _Attempt(self, method, url, idempotent, kwargs, decode)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(errors.RetriableError),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(settings.max_attempts),
            sleep=self.sleep,
            before_sleep=attempt.log_retry,
        )
        try:
            return retrying(attempt)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            raise errors.RetriesExhausted(
                f"{self.service} {attempt.endpoint} still failing after "
                f"{settings.max_attempts} attempts; last error: {last}"
            ) from last

    def _wait(self, retry_state: RetryCallState) -> float:
        """Retry-After when the server gave one, else exponential backoff with jitter."""
        cap = self.settings.max_wait_seconds
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if isinstance(exc, errors.RetriableError) and exc.retry_after is not None:
            return min(exc.retry_after, cap)
        base = self.settings.backoff_base_seconds * 2.0 ** (retry_state.attempt_number - 1)
        # Jitter spreads concurrent clients (cron + backfill) apart after a shared outage.
        return min(cap, base + random.uniform(0, base))


class _Attempt:
    """One call of the retry loop; remembers the last status for the retry log line."""

    def __init__(
        self,
        client: HttpClient,
        method: str,
        url: str,
        idempotent: bool,
        kwargs: dict[str, Any],
        decode: bool,
    ) -> None:
        self.client, self.method, self.url, self.kwargs = client, method, url, kwargs
        self.idempotent, self.decode = idempotent, decode
        self.last_status: int | None = None
        params = kwargs.get("params")
        full = requests.Request("GET", url, params=params).prepare().url if params else url
        self.endpoint = f"{method} {redact_url(full or url)}"

    def __call__(self) -> Any:
        self.last_status = None
        deadline = time.monotonic() + self.client.settings.total_timeout_seconds
        response = self._exchange(self.url, self.kwargs, deadline)
        # Redirects (snapzen.clients.origin): a GET follows its own origin a few hops, under
        # the same deadline, with no query of its own (the target carries its own); anything
        # else raises here, before a byte goes to the target.
        hops = 0
        while (target := self._next_hop(response, hops)) is not None:
            hops += 1
            response.close()
            without_params = {k: v for k, v in self.kwargs.items() if k != "params"}
            response = self._exchange(target, without_params, deadline)
        self.last_status = response.status_code
        self.endpoint = _endpoint_of(response) if response.url else self.endpoint
        error = classify(response, self.client.service)
        if error is None:
            return self._decoded(response) if self.decode else response
        # A non-idempotent request is repeated only after a 429 / TooManyJobs (refused before
        # any work). Any 5xx, including 503 with Retry-After, stays ambiguous: Zendesk documents
        # that 503 + Retry-After "indicates a database timeout or deadlock" and that the request
        # may be retried, but not that the import job was not already queued; re-POSTing
        # created duplicate tickets in the sandbox's fault test. Recovery by external_id lookup
        # is slower but exactly-once. Definite rejections (401/403/404/422/other 4xx) are
        # raised as they are, never retried.
        ambiguous = isinstance(error, errors.RetriableError) and not isinstance(
            error, errors.RateLimitedError
        )
        if ambiguous and not self.idempotent:  # _error makes it an AmbiguousWriteError
            raise self._error(
                f"answered HTTP {response.status_code}", errors.ServerError
            ) from error
        raise error

    def _next_hop(self, response: requests.Response, hops: int) -> str | None:
        """The same-origin URL a GET is redirected to; None for an answer that is not a
        redirect; RedirectRefusedError (or, for a write answered 303 "see other", which may
        mean it was done, AmbiguousWriteError) for every redirect that is not followed."""
        where = f"{self.client.service} {_endpoint_of(response)}"
        try:
            return next_hop(self.method, response, hops, where)
        except RedirectRefusedError as exc:
            response.close()
            if not self.idempotent and response.status_code == 303:
                raise errors.AmbiguousWriteError(
                    f"{exc}; the write may have taken effect, recover by lookup"
                ) from exc
            raise

    def _exchange(self, url: str, kwargs: dict[str, Any], deadline: float) -> requests.Response:
        """One request and its bounded body (no redirect followed), network errors mapped."""
        settings = self.client.settings
        try:
            # The status line, headers and body, under the deadline (snapzen.clients.origin).
            with answer_deadline(deadline):
                response = self.client.session.request(self.method, url, **kwargs)
                _read_bounded(response, settings.max_response_bytes)
            if time.monotonic() >= deadline:  # a body without a length, cut at the deadline
                raise rex.ConnectionError("cut at the deadline")
        except _BodyTooLarge as exc:
            raise self._error(str(exc), errors.ProtocolError) from None
        except rex.RequestException as exc:
            name = type(exc).__name__
            # Past the deadline, a cut connection was cut by answer_deadline, not the server.
            if time.monotonic() >= deadline:
                limit = f"http.total_timeout_seconds ({settings.total_timeout_seconds:g} s)"
                raise self._error(
                    f"no complete answer within {limit}", errors.TransientNetworkError
                ) from None
            if _sent_nothing(exc):
                raise self._error(
                    f"could not connect ({name})", errors.TransientNetworkError, acted=False
                ) from exc
            if not isinstance(exc, _TRANSIENT):  # invalid URL and such: retrying cannot help
                raise self._error(
                    f"request failed ({name})", errors.ProtocolError, acted=False
                ) from exc
            raise self._error(f"no complete answer ({name})", errors.TransientNetworkError) from exc
        return response

    def _decoded(self, response: requests.Response) -> Any:
        """The body as JSON; a malformed or truncated one is a retriable error (like a 5xx:
        a proxy cut the answer short, or the server sent half of it), or ambiguous for a write;
        one no attempt can read (UnreadableJson) is a ProtocolError: asking again brings the
        same text back. NaN and Infinity (not JSON, but read) come back as NonFinite floats,
        which the stored-case encoder refuses, so they are stored as json wrote them."""
        try:
            constant = jsoncodec.parse_constant
            return jsoncodec.loads_untrusted(lambda: response.json(parse_constant=constant))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, UnreadableJson
            status = response.status_code
            if isinstance(exc, jsoncodec.UnreadableJson):
                why = f"answered HTTP {status} with {exc}, not JSON it can read; refused"
                raise self._error(why, errors.ProtocolError) from None
            why = f"answered HTTP {status} with a body that is not JSON (malformed or truncated)"
            raise self._error(why, errors.ServerError) from exc

    def _error(
        self, why: str, kind: type[errors.SnapzenError], *, acted: bool = True
    ) -> errors.SnapzenError:
        """``kind`` of error for ``why``; for a write the server may have ``acted`` on, an
        AmbiguousWriteError instead: never retried, recovered by lookup."""
        where = f"{self.client.service} {self.endpoint}: {why}"
        if acted and not self.idempotent:
            return errors.AmbiguousWriteError(
                f"{where}; the write may have taken effect, not retried, recover by lookup"
            )
        return kind(where)

    def log_retry(self, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else None
        log.warning(
            "http.retry",
            service=self.client.service,
            method=self.method,
            url=self.endpoint.split(" ", 1)[-1],
            status=self.last_status,
            error=type(exc).__name__ if exc else None,
            attempt=retry_state.attempt_number,
            wait=round(wait, 3) if wait is not None else None,
        )


_TRANSIENT = (rex.Timeout, rex.ConnectionError, rex.ChunkedEncodingError, rex.ContentDecodingError)


class _BodyTooLarge(Exception):
    pass


def _read_bounded(response: requests.Response, limit: int) -> None:
    """Read the streamed body into ``response`` (so ``.content`` works as usual), refusing a
    declared or actual size over ``limit`` (the deadline is the caller's answer_deadline)."""
    try:
        declared = int(response.headers.get("Content-Length") or -1)
    except ValueError:
        declared = -1
    if declared > limit:
        response.close()
        raise _BodyTooLarge(
            f"answered with a {declared}-byte body, over http.max_response_bytes ({limit}); "
            "refused unread"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge(
                    f"answered with a body over http.max_response_bytes ({limit} bytes); "
                    "refused after reading that much"
                )
            chunks.append(chunk)
    except Exception:
        response.close()
        raise
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]
