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


def _serve(
    ledger_path: Path, pythonpath: str, argv: list[str], **extra: str
) -> subprocess.Popen[str]:
    """`snapzen ledger serve` (or ``argv`` after the interpreter) on ``ledger_path``, its
    stderr piped for the test to read."""
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        **extra,
        "SNAPZEN_LEDGER__PATH": str(ledger_path),
        "SNAPZEN_LEDGER__KEY": KEY_TEXT,
    }
    return subprocess.Popen(
        [sys.executable, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


SERVE = ["-m", "snapzen", "ledger", "serve", "--port", "0"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_datasette_and_removes_the_snapshot(
    ledger_path: Path, sig: signal.Signals
) -> None:
    process = _serve(ledger_path, str(ROOT), SERVE)
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
    process = _serve(ledger_path, f"{fake}{os.pathsep}{ROOT}", SERVE, STUBBORN_MARKS=str(marks))
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


# `ledger serve` whose snapshot copy stalls once made (a large ledger takes seconds).
SLOW_SNAPSHOT = """
import os, runpy, sys, time
from pathlib import Path

from snapzen.ledger.evidence import web

copy = web.copy_database


def slow(source, dest):
    copy(source, dest)  # the whole ledger, raw payloads included, until the columns go
    (Path(os.environ["SLOW_MARKS"]) / "copied").write_text(str(dest))
    for _ in range(600):
        time.sleep(0.1)


web.copy_database = slow
sys.argv = ["snapzen", "ledger", "serve", *sys.argv[1:]]
runpy.run_module("snapzen", run_name="__main__")
"""


@pytest.mark.parametrize("workdir", [False, True])
def test_sigterm_while_the_snapshot_is_made_leaves_no_copy(
    ledger_path: Path, tmp_path: Path, workdir: bool
) -> None:
    """Stopped before Datasette started: exit 1 (interrupted), and neither the temporary
    directory nor a half-made snapshot (a full copy until its raw column is dropped) stays;
    a --workdir given is kept, without the snapshot."""
    marks = tmp_path / "marks"
    marks.mkdir()
    work = tmp_path / "work"
    args = ["--port", "0", *(["--workdir", str(work)] if workdir else [])]
    process = _serve(ledger_path, str(ROOT), ["-c", SLOW_SNAPSHOT, *args], SLOW_MARKS=str(marks))
    try:
        snapshot = Path(_wait_for_file(marks / "copied", process))
        assert snapshot.exists()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1 and "interrupted" in err and "Traceback" not in err
    assert not snapshot.exists()
    assert snapshot.parent.exists() == workdir  # a --workdir is the user's: kept
