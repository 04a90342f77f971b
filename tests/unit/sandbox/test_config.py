"""The sandbox's settings refuse values it cannot emulate, naming the setting (the CLI turns
the message into `invalid sandbox settings: ...`, exit 2)."""

from __future__ import annotations

from typing import Any

import pytest

from snapzen.sandbox import SandboxConfig


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"eu_share": 1.5}, "eu_share"),
        ({"fault_rate": -0.1}, "fault_rate"),
        ({"fault_kinds": ("http_418",)}, "http_418"),
        ({"chats": -1}, "chats"),
        ({"widgets": 0}, "widgets"),
        ({"archive_after_seconds": -1.0}, "archive_after_seconds"),
        ({"search_index_lag_seconds": -1.0}, "search_index_lag_seconds"),
        ({"rate_header_style": "2022"}, "rate_header_style"),
        ({"rate_window_seconds": 0.0}, "rate_window_seconds"),
    ],
)
def test_a_setting_out_of_range_is_refused_by_name(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SandboxConfig(**given)
