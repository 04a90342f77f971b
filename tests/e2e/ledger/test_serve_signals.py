"""`snapzen ledger serve` as real processes: SIGTERM or SIGINT stops Datasette and removes
the snapshot; a POST is answered 405 without a traceback in the logs."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ledger_fixtures import KEY_TEXT

# Real `ledger serve` processes and signals (not in make test-fast).
pytestmark = pytest.mark.e2e

pytest.importorskip("datasette")

ROOT = Path(__file__).resolve().parents[3]


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def _wait_for(lines: queue.Queue[str], seen: list[str], pattern: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {pattern!r} in {seen}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_datasette_and_removes_the_snapshot(
    ledger_path: Path, sig: signal.Signals
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SNAPZEN_LEDGER__PATH": str(ledger_path),
        "SNAPZEN_LEDGER__KEY": KEY_TEXT,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "snapzen", "ledger", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        snapshot = Path(_wait_for(lines, seen, r"snapshot (\S+) sha256", 30))
        port = int(_wait_for(lines, seen, r"running on http://127\.0\.0\.1:(\d+)", 30))
        base = f"http://127.0.0.1:{port}"
        assert snapshot.exists()
        with urllib.request.urlopen(f"{base}/ledger.json", timeout=10) as answer:
            assert answer.status == 200
        post = urllib.request.Request(f"{base}/ledger/transfers", data=b"a=b", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=10)
        assert refused.value.code == 405

        process.send_signal(sig)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.3)
    while not lines.empty():
        seen.append(lines.get())
    assert "Traceback" not in "".join(seen)
    assert not snapshot.exists() and not snapshot.parent.exists()
    with pytest.raises(OSError):  # Datasette is gone with us, not left serving
        urllib.request.urlopen(f"{base}/ledger.json", timeout=2)


# A Datasette that outlasts SIGTERM (a slow shutdown): it notes each SIGTERM and serves on.
STUBBORN_DATASETTE = """
import os, signal, time
from pathlib import Path

marks = Path(os.environ["STUBBORN_MARKS"])
signal.signal(signal.SIGTERM, lambda *_: (marks / "term").write_text("x"))
(marks / "pid").write_text(str(os.getpid()))
for _ in range(600):
    time.sleep(1)
"""


def _wait_for_file(path: Path, process: subprocess.Popen[str]) -> str:
    for _ in range(300):  # bounded: 30 s
        if path.exists() and path.read_text():
            return path.read_text()
        assert process.poll() is None, f"ledger serve exited early ({process.returncode})"
        time.sleep(0.1)
    raise AssertionError(f"{path} never written")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_in_the_grace_period_stops_at_once_and_cleanly(
    ledger_path: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """The first signal asks Datasette to stop and waits up to the grace period; a second
    one kills it at once: exit 0, no child left serving, the snapshot removed."""
    fake = tmp_path / "fake"
    (fake / "datasette").mkdir(parents=True)
    (fake / "datasette" / "__init__.py").write_text("")
    (fake / "datasette" / "__main__.py").write_text(STUBBORN_DATASETTE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{fake}{os.pathsep}{ROOT}",
        "STUBBORN_MARKS": str(marks),
        "SNAPZEN_LEDGER__PATH": str(ledger_path),
        "SNAPZEN_LEDGER__KEY": KEY_TEXT,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "snapzen", "ledger", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stderr, lines), daemon=True).start()
    seen: list[str] = []
    child = 0
    try:
        snapshot = Path(_wait_for(lines, seen, r"snapshot (\S+) sha256", 30))
        child = int(_wait_for_file(marks / "pid", process))
        process.send_signal(sig)
        _wait_for_file(marks / "term", process)  # in the grace period (10 s), Datasette alive
        process.send_signal(sig)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        left = child and _alive(child)
        if left:  # never leave it behind, even when failing
            os.kill(child, signal.SIGKILL)
    assert not left  # gone, and reaped by ledger serve
    time.sleep(0.3)
    while not lines.empty():
        seen.append(lines.get())
    assert "Traceback" not in "".join(seen)
    assert not snapshot.exists() and not snapshot.parent.exists()
