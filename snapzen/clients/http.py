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
- definite rejections (401/403, 404, 422, other 4xx) are never retried, whatever the method.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)
from urllib3.exceptions import NewConnectionError

from snapzen import __version__
from snapzen.support import jsoncodec
from snapzen.support.errors import (
    AmbiguousWriteError,
    AuthError,
    BadRequestError,
    ConflictError,
    InvalidRecordError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RetriableError,
    RetriesExhausted,
    ServerError,
    SnapzenError,
    TooManyJobsError,
    TransientNetworkError,
)
from snapzen.support.log import get_logger
from snapzen.support.settings import HttpSettings

log = get_logger(__name__)

DEFAULT_USER_AGENT = f"snapzen/{__version__}"

# Query parameters whose values are never personal data and help when reading logs.
SAFE_QUERY_PARAMS = frozenset(
    {"start", "end", "widgetId", "timezone", "archive_immediately", "page", "per_page"}
)
# Zendesk 422 details can quote the offending value (an email address, a name): mask emails
# and keep the message short so an error column or log line never becomes a data dump.
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_MAX_DETAIL_CHARS = 500


# ---------------------------------------------------------------- helpers


def redact_url(url: str) -> str:
    """Path plus parameter names; values replaced by '…' unless known to be harmless."""
    parts = urlsplit(url)
    if not parts.query:
        return parts.path or "/"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={v if k in SAFE_QUERY_PARAMS else '…'}" for k, v in pairs)
    return f"{parts.path or '/'}?{query}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or junk."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def _json_body(response: requests.Response) -> Any:
    """The body as JSON, or None: error bodies may be text/plain or HTML."""
    try:
        return json.loads(response.content or b"")
    except (ValueError, UnicodeDecodeError):
        return None


def _decode_body(response: requests.Response) -> Any:
    """The body as JSON: NaN and Infinity (not JSON, but read) come back as NonFinite floats,
    which the stored-case encoder refuses, so they are stored as json wrote them."""
    return response.json(parse_constant=jsoncodec.parse_constant)


def _error_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):  # some Zendesk endpoints nest {"title", "message"}
        title = error.get("title")
        return title if isinstance(title, str) else None
    return None


def _safe_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = _EMAIL_RE.sub("[email]", text)
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "…"


def _describe_body(body: Any) -> str:
    """Zendesk's error/description/details as one short line (empty when not JSON)."""
    if not isinstance(body, dict):
        return ""
    parts = []
    code = _error_code(body)
    if code:
        parts.append(code)
    for key in ("description", "details"):
        if body.get(key):
            parts.append(f"{key}: {_safe_text(body[key])}")
    return "; ".join(parts)


def _endpoint_of(response: requests.Response) -> str:
    method = getattr(response.request, "method", None) or "?"
    return f"{method} {redact_url(response.url or '')}"


# ---------------------------------------------------------------- classifier


def classify(response: requests.Response, *, service: str | None = None) -> SnapzenError | None:
    """Map a response to the error the caller should see; None for 1xx/2xx/3xx."""
    status = response.status_code
    if status < 400:
        return None
    service = service or urlsplit(response.url or "").hostname or "the API"
    endpoint = _endpoint_of(response)
    body = _json_body(response)
    detail = _describe_body(body)
    suffix = f": {detail}" if detail else ""
    where = f"{service} {endpoint} answered HTTP {status}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    # Zendesk's 30-job cap; its status is undocumented, so any 4xx with that body counts.
    if status < 500 and _error_code(body) == "TooManyJobs":
        return TooManyJobsError(f"{where} (TooManyJobs){suffix}", retry_after)
    if status == 429:
        return RateLimitedError(f"{where} (rate limited){suffix}", retry_after)
    if status >= 500:
        return ServerError(f"{where}{suffix}", retry_after)
    if status in (401, 403):
        what = "credentials" if status == 401 else "role or permissions"
        return AuthError(
            f"{where}: {service} refused our {what}; check the {service} API token and the "
            "role of the account it belongs to"
        )
    if status == 404:
        return NotFoundError(f"{where} (not found){suffix}")
    if status == 409:
        return ConflictError(f"{where} (conflict){suffix}", retry_after)
    if status == 422:
        return InvalidRecordError(f"{where} (invalid record){suffix}")
    return BadRequestError(f"{where}{suffix}")


# ---------------------------------------------------------------- network exceptions


def _sent_nothing(exc: requests.exceptions.RequestException) -> bool:
    """True when the failure certainly happened before any byte of the request left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    # requests wraps urllib3's MaxRetryError(reason=NewConnectionError) in args[0]; walk the
    # args, reasons and causes looking for a refused/failed connection attempt.
    stack: list[Any] = [exc]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(item, BaseException):
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
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.settings = settings
        self.service = service
        # Public so sources can pace pages with the same (injectable) sleep.
        self.sleep = sleep
        self.session = session or requests.Session()
        self.user_agent = user_agent

    # -- public API

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Send with retries; return a 1xx–3xx response or raise a snapzen error."""
        method = method.upper()
        kwargs.setdefault(
            "timeout", (self.settings.connect_timeout_seconds, self.settings.timeout_seconds)
        )
        kwargs["headers"] = {"User-Agent": self.user_agent, **(kwargs.get("headers") or {})}
        attempt = _Attempt(self, method, url, idempotent, kwargs)
        retrying = Retrying(
            retry=retry_if_exception_type(RetriableError),
            wait=self._wait,
            stop=stop_after_attempt(self.settings.max_attempts),
            sleep=self.sleep,
            before_sleep=attempt.log_retry,
        )
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise RetriesExhausted(
                f"{self.service} {attempt.endpoint} still failing after "
                f"{self.settings.max_attempts} attempts; last error: {last}"
            ) from last

    def request_json(self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        """``request`` and decode the body; an undecodable 2xx body is a ProtocolError (or
        AmbiguousWriteError for a non-idempotent request, which the server may have acted on)."""
        response = self.request(method, url, idempotent=idempotent, **kwargs)
        try:
            return _decode_body(response)
        except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError via ValueError
            endpoint = f"{method.upper()} {redact_url(response.url or url)}"
            if not idempotent:
                raise AmbiguousWriteError(
                    f"{self.service} {endpoint}: the write may have succeeded but its answer "
                    f"(HTTP {response.status_code}) is not JSON"
                ) from exc
            raise ProtocolError(
                f"{self.service} {endpoint} answered HTTP {response.status_code} with a body "
                "that is not JSON"
            ) from exc

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request_json("GET", url, **kwargs)

    # -- policy

    def _wait(self, retry_state: RetryCallState) -> float:
        """Retry-After when the server gave one, else exponential backoff with jitter."""
        cap = self.settings.max_wait_seconds
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
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
    ) -> None:
        self.client = client
        self.method = method
        self.url = url
        self.idempotent = idempotent
        self.kwargs = kwargs
        self.endpoint = f"{method} {redact_url(_full_url(url, kwargs.get('params')))}"
        self.last_status: int | None = None

    def __call__(self) -> requests.Response:
        self.last_status = None
        try:
            response = self.client.session.request(self.method, self.url, **self.kwargs)
        except requests.exceptions.RequestException as exc:
            raise self._network_error(exc) from exc
        self.last_status = response.status_code
        self.endpoint = _endpoint_of(response) if response.url else self.endpoint
        error = classify(response, service=self.client.service)
        if error is None:
            return response
        if not self.idempotent and not _write_certainly_not_applied(error, response):
            raise AmbiguousWriteError(
                f"{self.client.service} {self.endpoint}: the write may have taken effect "
                f"(HTTP {response.status_code}); not retried, recover by lookup"
            ) from error
        raise error

    def _network_error(self, exc: requests.exceptions.RequestException) -> SnapzenError:
        name = type(exc).__name__
        service, endpoint = self.client.service, self.endpoint
        if _sent_nothing(exc):
            return TransientNetworkError(f"{service} {endpoint}: could not connect ({name})")
        transient = isinstance(
            exc,
            requests.exceptions.Timeout
            | requests.exceptions.ConnectionError
            | requests.exceptions.ChunkedEncodingError
            | requests.exceptions.ContentDecodingError,
        )
        if transient and not self.idempotent:
            return AmbiguousWriteError(
                f"{service} {endpoint}: no complete answer ({name}); the write may have "
                "taken effect, not retried, recover by lookup"
            )
        if transient:
            return TransientNetworkError(f"{service} {endpoint}: {name}")
        # Invalid URL, too many redirects, ...: retrying cannot help.
        return ProtocolError(f"{service} {endpoint}: request failed ({name})")

    def log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
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


def _write_certainly_not_applied(error: SnapzenError, response: requests.Response) -> bool:
    """May a non-idempotent request be repeated after this error response?"""
    if isinstance(error, RateLimitedError):  # 429 / TooManyJobs: refused before any work
        return True
    # Any 5xx, including 503 with Retry-After, stays ambiguous. Zendesk documents that 503 +
    # Retry-After "indicates a database timeout or deadlock" and that the request may be retried,
    # but not that the import job was not already queued; re-POSTing created duplicate tickets
    # in the sandbox's fault test. Recovery by external_id lookup is slower but exactly-once.
    # Definite rejections (401/403/404/422/other 4xx) are raised as they are, never retried.
    return not isinstance(error, RetriableError)


def _full_url(url: str, params: Any) -> str:
    if not params:
        return url
    prepared = requests.Request("GET", url, params=params).prepare()
    return prepared.url or url


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on plain dicts."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)
