"""The README quick start works when pasted into a shell as one block, right after the two
commands at the top, and creates the ledger with `snapzen init`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cli_server import CliServer

# The README pasted into bash: the real CLI, `sandbox serve` and all (not in make test-fast).
pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[3] / "README.md"


def quick_start_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block in the Quick start section"
    return match.group(1)


def test_quick_start_comes_right_after_the_two_commands() -> None:
    headings = [line for line in README.read_text().splitlines() if line.startswith("## ")]
    assert headings[0] == "## Quick start"
    block = quick_start_block()
    assert "snapzen init" in block
    assert block.index("snapzen init") < block.index("snapzen sync")


def test_quick_start_block_runs_as_pasted(tmp_path: Path) -> None:
    # A fresh clone after `make install`: .venv/bin/snapzen is the installed command, forked
    # from a server that imported snapzen once (tests/e2e/cli_server.py: each line is still a
    # process of its own), and `make` (not what is tested here) is a shim that finds it
    # installed.
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "snapzen").symlink_to(CliServer.get().bin_dir() / "snapzen")
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "make").write_text('#!/bin/sh\n[ "$1" = install ] && exit 0\nexit 1\n')
    (shims / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    env["SNAPZEN_SECRETS_DIR"] = str(tmp_path / "no-secrets")
    env["SNAPZEN_LOG__LEVEL"] = "warning"
    env["TMPDIR"] = str(tmp_path)  # the block's `mktemp -d` (its ledger) is the test's to clean
    script = "set -e\n" + quick_start_block() + '\necho "LEDGER=$SNAPZEN_LEDGER__PATH"\n'
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "created ledger" in out
    created = re.search(r"sync \S+: fetched \d+, created (\d+)", out)
    assert created and int(created.group(1)) > 0, out
    assert "ledger OK" in out
    ledger = Path(out.split("LEDGER=")[1].strip())
    assert ledger.is_file() and (ledger.stat().st_mode & 0o777) == 0o600
