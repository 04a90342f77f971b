"""One error hierarchy, grouped by what the caller does with the error.

    SnapzenError
    ├── ConfigError              usage or configuration is wrong: exit 2 before any network call
    ├── LockHeld                 another snapzen process holds the writer lock: exit 0, say so
    ├── FatalError               abort the run, cursors stay where they are: exit 1
    │   ├── AuthError            401/403: bad token, missing role
    │   ├── ProtocolError        an API answered something unusable (bad JSON, loop in paging)
    │   │   └── PaginationLoopError
    │   ├── BadRequestError      other 4xx on a whole request: a bug or an API change
    │   └── RetriesExhausted     a retriable error persisted beyond the retry budget
    ├── RetriableError           transient: the HTTP layer retries it (honouring Retry-After)
    │   ├── RateLimitedError     429
    │   │   └── TooManyJobsError Zendesk's 30 in-flight job cap
    │   ├── ServerError          5xx
    │   ├── ConflictError        409: simultaneous write, retry after a pause
    │   └── TransientNetworkError connection refused/reset, timeout
    ├── AmbiguousWriteError      a non-idempotent POST may or may not have taken effect:
    │                            never retried blindly; the outbox recovers it by lookup
    └── RecordError              one record is bad: mark it failed with the reason, go on
        ├── InvalidRecordError   422, or a payload that fails validation
        └── NotFoundError        404 on a single resource

Third-party exceptions (requests, pydantic) are converted at one boundary (snapzen.clients.http,
snapzen.policy.models) with ``raise ... from exc`` so callers only ever catch these.
Messages never carry secrets or personal data: they name the setting, endpoint or case id.
"""

from __future__ import annotations

import sqlite3


class SnapzenError(Exception):
    """Base of every error snapzen raises on purpose."""


class ConfigError(SnapzenError):
    """A setting is missing or invalid; the message names the setting."""


class LockHeld(SnapzenError):
    """Another snapzen process is writing to this ledger."""


class FatalError(SnapzenError):
    """The run cannot continue; nothing already committed is lost."""


class AuthError(FatalError):
    """The API refused our credentials (401) or our role (403): ``status``, None when no API
    answer said so (a failed OAuth token request, an anonymous answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProtocolError(FatalError):
    """The API answered with something we cannot use."""


class PaginationLoopError(ProtocolError):
    """A next-page link repeated: following it would loop forever."""


class BadRequestError(FatalError):
    """A 4xx other than the ones handled specifically."""


class RetriesExhausted(FatalError):
    """A transient failure outlasted the retry budget."""


class RetriableError(SnapzenError):
    """Transient failure; ``retry_after`` (seconds) is the server's hint when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """HTTP 429."""


class TooManyJobsError(RateLimitedError):
    """Zendesk refused a new background job: 30 are already queued or running."""


class ServerError(RetriableError):
    """HTTP 5xx."""


class ConflictError(RetriableError):
    """HTTP 409: Zendesk saw a simultaneous write to the same resource."""


class TransientNetworkError(RetriableError):
    """Connection refused, reset or timed out."""


class AmbiguousWriteError(SnapzenError):
    """A write may have reached the server but we did not see the answer."""


class RecordError(SnapzenError):
    """One record cannot be processed; the rest of the run goes on."""


class InvalidRecordError(RecordError):
    """The record failed validation (ours or the API's 422)."""


class NotFoundError(RecordError):
    """HTTP 404 on a single resource."""


# What the machine, not snapzen, got wrong: disk full, the database locked for too long, a file
# vanished mid-run. The CLI reports them in one line (exit 1), without a traceback.
ENVIRONMENT_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)

EXIT_OK = 0
EXIT_ABORTED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def exit_code_of(exc: BaseException) -> int:
    """The exit code a command ends with when ``exc`` escapes it (snapzen.cli.common's
    mapping), so a `runs` row can record the code the process really exits with."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, LockHeld):
        return EXIT_OK
    return EXIT_ABORTED
