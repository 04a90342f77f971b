"""`snapzen run` performs the retention sweep once a day through the scheduler's daily job."""

from __future__ import annotations

from typing import Any

import pytest

from snapzen.commands import retention
from snapzen.commands.service import retention_job
from snapzen.support.settings import Settings


def test_daily_job_is_the_retention_sweep_waiting_for_the_lock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_sweep(given: Settings, **kwargs: Any) -> str:
        calls.append({"settings": given, **kwargs})
        return "swept"

    monkeypatch.setattr(retention, "run_sweep", fake_sweep)
    job = retention_job(settings)
    assert job is not None
    assert job() == "swept"
    assert calls == [{"settings": settings, "actor": "scheduler", "wait": True}]
