"""`make demo`'s own run (snapzen.demo), and the commands it tells the user to try next."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from snapzen.demo import run_demo, summary
from tests.e2e.conftest import snapzen

pytestmark = pytest.mark.e2e


def test_the_demo_passes_and_the_commands_it_prints_work(tmp_path: Path) -> None:
    result = run_demo(chats=60, seed=7, workdir=tmp_path, say=lambda _line: None)
    assert result.ok, result.failures
    text = summary(result)
    for name, value in result.env.items():
        assert f"export {name}={shlex.quote(value)}" in text
    # The user's shell: only what the demo printed (no SNAPZEN_* of the developer's own).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(result.env)
    for command in (["status"], ["ledger", "list"], ["ledger", "verify"]):
        done = snapzen(env, *command, timeout=120)
        assert done.returncode in (0, 3), (command, done.stderr)  # 3: status has cases settling
        assert "error" not in done.stderr.lower(), (command, done.stderr)
