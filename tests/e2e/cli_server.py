"""Run ``python -m snapzen ARGS`` for the end-to-end tests without paying Python's start-up and
snapzen's imports on every call (about 0.7 s of CPU each, most of the suite's time).

A server process per pytest worker imports snapzen once, single-threaded, then forks one child
per call. The child is a process of its own, as a subprocess would be: it gets the caller's
environment (all of it, replacing the server's), working directory, umask, argv and stdin,
stdout and stderr (the caller's file descriptors, passed over a Unix socket), runs
``snapzen.__main__`` exactly as ``python -m snapzen`` does (runpy), and exits through the
interpreter's own exit steps (non-daemon threads joined, atexit handlers run, streams flushed)
with the code ``sys.exit`` gave. The caller gets a ``subprocess.CompletedProcess``.

What differs from a fresh interpreter: the modules were imported before the call, so a
module-level value computed from the environment or the clock at import time is the server's
(snapzen reads its settings, clock offset and secrets at run time, so only the date in the
`backfill --help` examples is affected), and the string hash seed is shared by every child.
A call whose environment changes how Python itself starts (PYTHON*, LANG, LC_*) runs in a real
subprocess; so does every call when ``E2E_CLI_SUBPROCESS=1`` is set, to rule the server out.
``start_cli`` forks a run without waiting for it (a Popen's pid, poll, send_signal and wait),
for tests that kill a run at some moment: the kill lands in snapzen's work, not in Python's
start-up. Tests that talk to a running CLI through its pipes use subprocess.Popen directly.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import locale
import os
import pkgutil
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Packages whose modules the commands import lazily: imported once in the server, so that a
# child finds them loaded. (The sandbox and the demo are not the CLI's.)
PRELOAD = ("snapzen.commands", "snapzen.support", "snapzen.ledger", "snapzen.policy",
           "snapzen.clients", "snapzen.sync", "snapzen.cli")  # fmt: skip
_HEADER = struct.Struct("!I")
_INT = struct.Struct("!i")


def _startup_keys(env: Mapping[str, str]) -> dict[str, str]:
    """The variables Python reads while it starts (encodings, buffering, flags, paths)."""
    return {
        k: v for k, v in env.items() if k.startswith(("PYTHON", "LC_")) or k in ("LANG", "LANGUAGE")
    }


# ---------------------------------------------------------------- the server (its own process)


def _preload() -> None:
    import snapzen.cli  # noqa: F401  what `python -m snapzen` imports before main()

    for name in ("typer._adapters", "typer._click.decorators"):  # imported by app() itself
        with contextlib.suppress(ImportError):
            importlib.import_module(name)

    for name in PRELOAD:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            try:
                importlib.import_module(info.name)
            except Exception:  # the child imports it again and fails as a run would
                continue


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter does with an uncaught SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any], fds: list[int], closing: list[int]) -> None:
    """In the forked child: become the caller's ``python -m snapzen ARGS`` and exit."""
    code, interrupted = 1, False
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:
            os.close(fd)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        import random

        random.seed()  # a fresh process draws its own seed
        import runpy

        script = request.get("script")
        try:
            if script:  # the console script `snapzen` (pyproject's entry point)
                sys.path[0] = os.path.dirname(script)
                sys.argv = [script, *request["args"]]
                from snapzen.cli import main

                main()
            else:  # python -m snapzen
                sys.path[0] = request["cwd"]
                sys.argv = ["snapzen", *request["args"]]  # runpy sets argv[0] to __main__.py
                runpy.run_module("snapzen", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:  # the interpreter prints it, then dies of SIGINT
            sys.excepthook(*sys.exc_info())
            interrupted = True
        except BaseException:  # printed as the interpreter prints it
            sys.excepthook(*sys.exc_info())
            code = 1
        threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
                stream.flush()
        if interrupted:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    while len(head) < _HEADER.size:
        head += conn.recv(_HEADER.size - len(head))
    (size,) = _HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the caller went away")
        body += chunk
    return json.loads(body), list(fds)


def serve(path: str) -> None:
    """Listen on ``path`` until stdin closes (the pytest worker that started us is gone)."""
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}
    import gc

    gc.freeze()  # what was imported stays shared with every child
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                if not os.read(0, 1024):
                    return
            elif key.fileobj is listener:
                conn, _ = listener.accept()
                request, fds = _receive(conn)
                closing = [listener.fileno(), conn.fileno(), wake_r, wake_w, selector.fileno()]
                closing += [other.fileno() for other in waiting.values()]  # other calls' answers
                pid = os.fork()
                if pid == 0:
                    _child(request, fds, closing)
                for fd in fds:
                    os.close(fd)
                conn.sendall(_INT.pack(pid))
                waiting[pid] = conn
            else:
                while True:
                    try:
                        if not os.read(wake_r, 1024):
                            break
                    except BlockingIOError:
                        break
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            done = waiting.pop(pid, None)
            if done is not None:
                with contextlib.suppress(OSError):  # the caller gave up (a timeout)
                    done.sendall(_INT.pack(status))
                done.close()


# ---------------------------------------------------------------- the caller (pytest worker)


class CliServer:
    """One server per pytest worker process, started on first use."""

    _lock = threading.Lock()
    _started: CliServer | None = None

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="snapzen-cli-")
        self.path = os.path.join(self.dir, "s")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready != b"ready\n":
            raise RuntimeError(f"the CLI server did not start: {ready!r}")
        atexit.register(self.close)

    @classmethod
    def get(cls) -> CliServer:
        with cls._lock:
            if cls._started is None or cls._started.proc.poll() is not None:
                cls._started = cls()
            return cls._started

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(
        self, args: Sequence[str], env: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "snapzen", *args]
        with (
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            open(os.devnull, "rb") as null,
        ):
            try:
                status = _call(self.path, args, env, [null.fileno(), out.fileno(), err.fileno()],
                               timeout)  # fmt: skip
            except TimeoutError:
                raise subprocess.TimeoutExpired(cmd, timeout, _text(out), _text(err)) from None
            return subprocess.CompletedProcess(
                cmd, os.waitstatus_to_exitcode(status), _text(out), _text(err)
            )

    def bin_dir(self) -> Path:
        """A directory holding a `snapzen` executable that runs through this server, for tests
        that paste documented command lines into a shell (put it first on PATH)."""
        bin_dir = Path(self.dir) / "bin"
        script = bin_dir / "snapzen"
        if not script.exists():
            bin_dir.mkdir(exist_ok=True)
            script.write_text(
                f"#!{sys.executable} -S\n"  # no site: the client needs the standard library only
                "import sys\n"
                f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                "from cli_server import shim\n"
                f"shim({self.path!r}, {_startup_keys(self.env)!r})\n"
            )
            script.chmod(0o700)
        return bin_dir


def _call(
    path: str,
    args: Sequence[str],
    env: Mapping[str, str],
    fds: list[int],
    timeout: float | None,
    script: str | None = None,
) -> int:
    """Have the server run ``args`` with ``fds`` as stdin, stdout and stderr, as ``python -m
    snapzen`` or, given its path, as the console ``script``; the wait status. On a timeout
    the child is killed and TimeoutError raised."""
    conn, pid = _fork(path, args, env, fds, script)
    with conn:
        conn.settimeout(timeout)
        try:
            (status,) = _INT.unpack(_read_exactly(conn, _INT.size))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            conn.settimeout(None)
            _read_exactly(conn, _INT.size)
            raise
        return status


def _fork(
    path: str, args: Sequence[str], env: Mapping[str, str], fds: list[int], script: str | None
) -> tuple[socket.socket, int]:
    """Have the server fork the run; the connection its wait status will come on, and the
    child's pid."""
    request = {"args": list(args), "env": dict(env), "cwd": os.getcwd(), "umask": _umask()}
    request["script"] = script
    body = json.dumps(request).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        socket.send_fds(conn, [_HEADER.pack(len(body))], fds)
        conn.sendall(body)
        (pid,) = _INT.unpack(_read_exactly(conn, _INT.size))
    except BaseException:
        conn.close()
        raise
    return conn, pid


class Started:
    """A run forked from the server and not waited for, with the part of subprocess.Popen's
    interface the tests use (its output goes to /dev/null, as with DEVNULL)."""

    def __init__(self, server: CliServer, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.args = [sys.executable, "-m", "snapzen", *args]
        with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
            fds = [null_in.fileno(), null_out.fileno(), null_out.fileno()]
            self._conn, self.pid = _fork(server.path, args, env, fds, None)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self.wait()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                (status,) = _INT.unpack(_read_exactly(self._conn, _INT.size))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0) from None
            self._conn.close()
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # as Popen: never a pid that may have been reused
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def shim(path: str, startup: dict[str, str]) -> None:
    """The `snapzen` of bin_dir(): this process's argv, environment and standard streams."""
    args = sys.argv[1:]
    if _startup_keys(os.environ) != startup:  # the console script, in a fresh interpreter
        os.execv(sys.executable, [sys.executable, "-c", "from snapzen.cli import main; main()",
                                  *args])  # fmt: skip
    status = _call(path, args, os.environ, [0, 1, 2], None, script=sys.argv[0])
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: so is this process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the CLI server closed the connection")
        data += chunk
    return data


def _umask() -> int:
    """The process's umask, read without setting it (another thread may be creating files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise RuntimeError("no Umask line in /proc/self/status")


def _text(file: Any) -> str:
    """As subprocess.run(text=True) reads a pipe: the locale's encoding, universal newlines."""
    file.seek(0)
    data: bytes = file.read()
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _forkable(env: Mapping[str, str]) -> bool:
    """A run with ``env`` is the same forked from the server as started afresh."""
    here = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    return os.environ.get("E2E_CLI_SUBPROCESS") != "1" and _startup_keys(env) == _startup_keys(here)


def run_cli(
    args: Sequence[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, snapzen, *args], env=env, capture_output, text)``, forked
    from the server when that is the same thing (see the module's docstring)."""
    if not _forkable(env):
        return subprocess.run(
            [sys.executable, "-m", "snapzen", *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    return CliServer.get().run(args, env, timeout)


def start_cli(args: Sequence[str], env: Mapping[str, str]) -> Started | subprocess.Popen[bytes]:
    """``subprocess.Popen([python, -m, snapzen, *args], env=env)`` with its output discarded,
    forked from the server when that is the same thing (as run_cli)."""
    if not _forkable(env):
        return subprocess.Popen(
            [sys.executable, "-m", "snapzen", *args],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return Started(CliServer.get(), args, env)


if __name__ == "__main__":
    serve(sys.argv[1])
