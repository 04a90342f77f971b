from __future__ import annotations

import pytest

from snapzen.support.log import configure_logging


@pytest.fixture(autouse=True)
def _logging_to_current_stderr() -> None:
    """A CliRunner test leaves structlog writing to its (closed) captured stderr; point it
    back at the real one before each test."""
    configure_logging("info", "json")
