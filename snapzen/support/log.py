"""structlog configured once: JSON lines to stderr, a run id bound per run, secrets scrubbed.

Personal data never goes into a log call in the first place (we log case ids and counts, not
names, emails or messages). The scrubber below is the second line of defence for secrets: any
value registered with ``register_secret`` is replaced wherever it appears in an event.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from snapzen.support.scrub import one_line, scrub_personal


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

__all__ = [
    "bind_run",
    "configure_logging",
    "get_logger",
    "new_run_id",
    "one_line",
    "register_secret",
    "scrub_personal",
]

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never print this string (tokens, keys, basic-auth headers)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def _scrub_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[secret]")
    return scrub_personal(text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {key: _scrub(value) for key, value in event_dict.items()}


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
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
    return structlog.PrintLogger(file=sys.stderr)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def bind_run(run_id: str, kind: str) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(run_id=run_id, run_kind=kind)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
