"""Writing a file so that readers see the old one or the complete new one, never a half;
and creating every file snapzen writes readable by its owner only (0600), every directory it
creates 0700.

Exports, checkpoints and backups carry the ledger's rows (backups also raw payloads of pending
chats), logs and access packs personal data: their mode is set explicitly (``fchmod``/
``chmod`` after creating), not left to whatever umask the operator's shell has; umask 000
would otherwise make them world-writable, and 022 world-readable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (replacing any file there), so that whatever is
    then written into it (SQLite included: its journal copies the file's mode) starts private.
    """
    Path(path).unlink(missing_ok=True)
    open_private_binary(path, exclusive=True).close()


@contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """Write next to ``path`` (same directory, so the rename is atomic), fsync, then rename;
    on any error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # mkstemp's default today; stated, as the files hold data
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parent, each 0700; directories that exist are left
    as they are (the operator's own)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another process: theirs
        os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir's mode is narrowed by the umask only


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` (created or truncated), the file 0600 whatever the umask."""
    with open_private_binary(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def _private_fd(path: Path, append: bool, exclusive: bool = False) -> int:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(Path(path), flags | (os.O_EXCL if exclusive else 0), PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the umask may only narrow the mode given to open
    except OSError:
        os.close(fd)
        raise
    return fd


def open_private(path: Path, *, append: bool = True) -> TextIO:
    """A text file opened to write (appending, or truncated), 0600 whatever the umask: for
    logs, which may carry what a run logged about people's chats."""
    return os.fdopen(_private_fd(path, append), "a" if append else "w", encoding="utf-8")


def open_private_binary(path: Path, *, append: bool = False, exclusive: bool = False) -> BinaryIO:
    """``open_private`` in binary mode (truncating unless ``append``); ``exclusive``: a new
    file only (FileExistsError when ``path`` exists)."""
    return os.fdopen(_private_fd(path, append, exclusive), "ab" if append else "wb")


def append_synced(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (file created 0600, missing directories 0700) and fsync
    it: on disk once this returns. The caller keeps two appends from interleaving."""
    private_dir(Path(path).parent)
    with open_private(path) as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
