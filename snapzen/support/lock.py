"""One writer at a time: an OS file lock beside the database (``<db>.lock``).

filelock uses fcntl/msvcrt locks, which the OS releases when the process dies (even by
SIGKILL), so a crashed run never leaves a stale lock behind.

The lock is taken before the database is opened (snapzen.ledger.store.db): a restore swaps the
file under its lock, and a command that opened the ledger first and then queued behind it
would write into the replaced file. ``holds_writer_lock`` lets the opener check that.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from snapzen.support.atomic import PRIVATE_MODE
from snapzen.support.errors import ConfigError, LockHeld

# The lock files this process holds now (absolute paths), for holds_writer_lock.
_HELD: Counter[str] = Counter()


def lock_path(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


def _key(db_path: Path | str) -> str:
    return str(Path(lock_path(db_path)).absolute())


def holds_writer_lock(db_path: Path | str) -> bool:
    """True while this process holds the writer lock of the database at ``db_path``."""
    return _HELD[_key(db_path)] > 0


@contextmanager
def writer_lock(db_path: Path | str, *, wait: bool = False, timeout: float = -1) -> Iterator[None]:
    """Hold the writer lock; raise LockHeld at once (or after ``timeout`` s when waiting).

    When it has to wait, a ``writer_lock_waiting`` log line says so (info, once per process;
    then debug), before waiting."""
    path = lock_path(db_path)
    lock = FileLock(str(path), mode=PRIVATE_MODE)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait or timeout == 0:
                raise
            from snapzen.support.log import get_logger, once  # lazy: start-up (structlog)

            # `run` waits in 1 s slices (to notice SIGTERM): said once, then at debug.
            log = get_logger("snapzen.support.lock")
            (log.info if once("writer_lock_waiting", str(path)) else log.debug)(
                "writer_lock_waiting", lock=str(path)
            )
            lock.acquire(timeout=timeout)
    except Timeout:  # first: filelock's Timeout is itself an OSError
        raise LockHeld(
            f"another snapzen run holds the lock {path}; nothing to do (use --wait to queue)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"setting ledger.path ({db_path}): cannot create the lock: {exc}"
        ) from None
    key = _key(db_path)
    _HELD[key] += 1
    try:
        _private(path)
        yield
    finally:
        _HELD[key] -= 1
        lock.release()


def _private(path: Path) -> None:
    """The lock file is empty, but every file snapzen writes is 0600 (an older snapzen, or
    filelock under another umask, may have left it wider)."""
    with suppress(OSError):  # not ours to fix (another user's lock file): the lock matters
        if path.stat().st_mode & 0o777 != PRIVATE_MODE:
            os.chmod(path, PRIVATE_MODE)
