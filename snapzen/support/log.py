"""structlog configured once: JSON lines to stderr, a run id bound per run, secrets scrubbed.

Personal data never goes into a log call in the first place (we log case ids and counts, not
names, emails or messages). The scrubber below is the second line of defence for secrets: any
value registered with ``register_secret`` is replaced wherever it appears in an event.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from snapzen.support import clock

# Re-exported: what logs, and code beside it, scrub text with.
from snapzen.support.scrub import one_line as one_line
from snapzen.support.scrub import scrub_personal as scrub_personal


def _import_structlog() -> ModuleType:
    """structlog, imported with ``rich`` hidden when nothing imported rich yet.

    structlog.dev and structlog.tracebacks import rich (and with it pygments) at import time,
    for coloured tracebacks in the console renderer: ~10 MB of RSS in every snapzen process,
    unused (logs are JSON, or console text without colours; tracebacks are formatted by
    structlog's plain formatter then). A ``None`` in ``sys.modules`` makes ``import rich``
    fail for that moment only; the CLI still imports rich for its tables and progress bars."""
    if "rich" in sys.modules:
        import structlog

        return structlog
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        del sys.modules["rich"]
    return structlog


if TYPE_CHECKING:
    import structlog
else:
    structlog = _import_structlog()

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never print this string (tokens, keys, basic-auth headers)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            value = value.replace(secret, "[secret]")
        return scrub_personal(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {key: _scrub(value) for key, value in event_dict.items()}


# The run this process is in (one at a time: runs hold the writer lock). A module global, not
# contextvars: the pass's worker threads (readers, submit and poll workers) do not inherit
# contextvars, and their lines must carry the run id too.
_run: dict[str, str] = {}
# Where log lines go instead of stderr, while a progress bar owns the terminal.
_target: TextIO | None = None
_once_seen: set[tuple[str, str]] = set()
_once_lock = threading.Lock()


def add_run(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in _run.items():
        event_dict.setdefault(key, value)
    return event_dict


def utc_timestamp(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """ISO 8601 in UTC with a ``Z``, to the millisecond: the same shape on every line."""
    event_dict["timestamp"] = clock.format_millis(clock.now())
    return event_dict


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            add_run,
            structlog.processors.add_log_level,
            utc_timestamp,
            structlog.processors.format_exc_info,
            scrub_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        # Resolve sys.stderr when each logger is made, not once here: a caller that swaps
        # stderr (tests, embedding) must not leave us writing to a closed stream.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=_target or sys.stderr)


@contextmanager
def logs_to(stream: TextIO) -> Iterator[None]:
    """Send log lines to ``stream`` for the duration (a file while a progress bar is drawn
    on the terminal: lines written under a live bar break it up and get wrapped)."""
    global _target
    previous, _target = _target, stream
    try:
        yield
    finally:
        _target = previous


@contextmanager
def bound_run(run_id: str, kind: str) -> Iterator[None]:
    """Tag every line inside with the run; lines after it (``scheduler_stopped``) do not
    carry its id."""
    _run.clear()
    _run.update(run_id=run_id, run_kind=kind)
    try:
        yield
    finally:
        _run.clear()


def once(key: str, detail: str = "") -> bool:
    """True the first time ``(key, detail)`` is seen in this process: for warnings that every
    pass of `snapzen run` would otherwise repeat (a deprecated credential, a config smell)."""
    with _once_lock:
        if (key, detail) in _once_seen:
            return False
        _once_seen.add((key, detail))
        return True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
