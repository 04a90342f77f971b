"""One writer at a time: an OS file lock beside the database (``<db>.lock``).

filelock uses fcntl/msvcrt locks, which the OS releases when the process dies (even by
SIGKILL), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from snapzen.support.errors import ConfigError, LockHeld


def lock_path(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


@contextmanager
def writer_lock(db_path: Path | str, *, wait: bool = False, timeout: float = -1) -> Iterator[None]:
    """Hold the writer lock; raise LockHeld at once (or after ``timeout`` s when waiting)."""
    path = lock_path(db_path)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout if wait else 0)
    except Timeout:  # first: filelock's Timeout is itself an OSError
        raise LockHeld(
            f"another snapzen run holds the lock {path}; nothing to do (use --wait to queue)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"setting ledger.path ({db_path}): cannot create the lock: {exc}"
        ) from None
    try:
        yield
    finally:
        lock.release()
