"""`snapzen sandbox serve`'s options become the emulator's config in the sandbox package, not in
the CLI: named as the command line names them, checked before anything listens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapzen.sandbox import server
from snapzen.sandbox.server import Sandbox
from snapzen.support.errors import ConfigError


def _refused(options: dict[str, object]) -> str:
    told: list[Sandbox] = []
    with pytest.raises(ConfigError) as refused:
        server.serve(options, told.append)
    assert told == []  # nothing listened
    return str(refused.value)


def test_options_named_as_on_the_command_line_shape_the_sandbox(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    options = {"chats": 0, "rate_limit": 7, "rate_window": 5.0, "max_jobs": 3}
    options |= {"fault_timeout": 0.5, "host": "127.0.0.1", "port": 0}
    options |= {"allow_nonlocal": False, "ready_file": ready, "duration": 0, "detach": False}
    told: list[Sandbox] = []
    server.serve(options, told.append)
    [sb] = told
    assert (sb.config.rate_limit_per_minute, sb.config.rate_window_seconds) == (7, 5.0)
    assert (sb.config.max_jobs_in_flight, sb.config.fault_timeout_seconds) == (3, 0.5)
    assert json.loads(ready.read_text())["base_url"] == sb.base_url


def test_a_non_loopback_host_is_refused_unless_allowed() -> None:
    assert "--allow-nonlocal" in _refused({"host": "0.0.0.0", "duration": 0})


def test_a_value_the_config_refuses_is_a_usage_error() -> None:
    message = _refused({"eu_share": 2.0, "duration": 0})
    assert message.startswith("invalid sandbox settings: eu_share must be between 0 and 1")
