"""`snapzen sandbox serve|dump`: as a real subprocess (bounded) and through Typer's runner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from snapzen.cli.sandbox import app
from snapzen.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    ready = tmp_path / "ready.json"
    cmd = [
        sys.executable,
        "-m",
        "snapzen",
        "sandbox",
        "serve",
        "--chats",
        "20",
        "--long-transcripts",
        "0",
        "--ready-file",
        str(ready),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, ready


def _wait_ready(proc: subprocess.Popen[str], ready: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if ready.exists():
            return dict(json.loads(ready.read_text()))
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("sandbox never became ready")


@pytest.mark.e2e  # a real process (not in make test-fast)
def test_serve_with_duration_and_ready_file(tmp_path: Path) -> None:
    proc, ready = _start(tmp_path, "--duration", "2")
    try:
        info = _wait_ready(proc, ready)
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert info["env"]["SNAPZEN_ZENDESK__BASE_URL"] == info["base_url"] + "/zendesk"
        state = requests.get(info["base_url"] + "/_sandbox/state", timeout=5).json()
        assert state["cases_generated"] == 20
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert info["base_url"] in out
    assert f"export SNAPZEN_SNAPENGAGE__BASE_URL={info['base_url']}/snapengage" in out


@pytest.mark.e2e
def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc, ready = _start(tmp_path)
    try:
        _wait_ready(proc, ready)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_serve_refuses_non_loopback_host() -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--duration", "0"])
    assert result.exit_code == 2
    assert "allow-nonlocal" in result.output


def test_dump_prints_inspection_json() -> None:
    with Sandbox(SandboxConfig(chats=3, long_transcripts=0)) as sb:
        runner = CliRunner()
        state = runner.invoke(app, ["dump", "--url", sb.base_url])
        assert state.exit_code == 0, state.output
        assert json.loads(state.output)["cases_generated"] == 3
        truth = runner.invoke(app, ["dump", "--what", "truth"], env=sb.env())
        assert truth.exit_code == 0 and len(json.loads(truth.output)) == 3
        bad = runner.invoke(app, ["dump", "--url", sb.base_url, "--what", "nope"])
        assert bad.exit_code == 2


def test_help_texts() -> None:
    runner = CliRunner()
    for command in (["--help"], ["serve", "--help"], ["dump", "--help"]):
        result = runner.invoke(app, command, terminal_width=200)
        assert result.exit_code == 0
    serve_help = runner.invoke(app, ["serve", "--help"], terminal_width=200).output
    for option in ("--chats", "--fault-rate", "--rate-limit", "--ready-file", "--duration"):
        assert option in serve_help
