"""The end-to-end tests' CLI server (tests/e2e/cli_server.py) runs a command as a fresh
`python -m snapzen` does: the same exit code, stdout and stderr, with the caller's environment
and working directory; so does the `snapzen` it puts on PATH for pasted shell lines; a run
it starts without waiting is killed as a process is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cli_server import CliServer, Started, run_cli, start_cli

pytestmark = pytest.mark.e2e

CASES = [
    ["--version"],
    ["--help"],
    ["no-such-command"],  # a usage error: exit 2
    ["ledger", "verify"],  # the ledger named by the environment, relative to the directory
    ["status", "--config", "missing.toml"],
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(
        SNAPZEN_LEDGER__PATH="relative/ledger.db",
        SNAPZEN_LEDGER__KEY="cli-server-key-0123456789abcdef",
        SNAPZEN_SECRETS_DIR=str(tmp_path / "no-secrets"),
        SNAPZEN_TRANSFER__CONTROLLER_COUNTRY="US",
        COLUMNS="100",
    )
    return env


@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_a_forked_run_is_a_fresh_interpreters_run(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative").mkdir()
    (tmp_path / "relative" / "ledger.db").write_bytes(b"")  # there, not a ledger
    fresh = subprocess.run(
        [sys.executable, "-m", "snapzen", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    forked = run_cli(args, env, timeout=60)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode,
        fresh.stdout,
        fresh.stderr,
    )
    if args == ["ledger", "verify"]:  # the caller's environment and directory were used
        assert "relative/ledger.db" in forked.stderr, forked.stderr
        assert "no ledger at" not in forked.stderr, forked.stderr


def test_the_snapzen_on_path_runs_through_the_server(tmp_path: Path) -> None:
    """Pasted into bash, the server's `snapzen` answers as the installed console script does
    (its own name in the usage line, the exit code, the streams the shell gave it)."""
    env = _env(tmp_path)
    installed = Path(sys.executable).parent / "snapzen"
    line = "snapzen no-such-command 2>&1 | cat; echo status=${PIPESTATUS[0]}"
    seen = []
    for first in (str(CliServer.get().bin_dir()), str(installed.parent)):
        pasted = subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env={**env, "PATH": os.pathsep.join([first, env["PATH"]])},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        seen.append(pasted.stdout)
    assert seen[0].endswith("status=2\n"), seen[0]
    assert seen[0] == seen[1]
    assert "Usage: snapzen " in seen[0] or "Try 'snapzen --help'" in seen[0], seen[0]


def test_a_started_run_is_killed_as_a_process_is(tmp_path: Path) -> None:
    """start_cli answers as subprocess.Popen does: no exit code while the run runs, then the
    wait status SIGKILL leaves (-9), from wait() and poll() alike."""
    ready = tmp_path / "ready.json"
    args = ["sandbox", "serve", "--port", "0", "--chats", "5", "--ready-file", str(ready)]
    run = start_cli(args, _env(tmp_path))
    if os.environ.get("E2E_CLI_SUBPROCESS") != "1":
        assert isinstance(run, Started)  # forked from the server
    for _ in range(300):  # bounded: at most ~30 s
        if ready.exists() or run.poll() is not None:
            break
        time.sleep(0.1)
    assert ready.exists() and run.poll() is None
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=30) == -signal.SIGKILL
    assert run.poll() == -signal.SIGKILL
    run.send_signal(signal.SIGKILL)  # a finished run is not signalled again (its pid is gone)
