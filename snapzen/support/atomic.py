"""Writing a file so that readers see the old one or the complete new one, never a half;
and creating the files that hold ledger data readable by their owner only (0600).

Exports, checkpoints and backups carry the ledger's rows (backups also raw payloads of pending
chats): their mode is set explicitly, not left to whatever umask the operator's shell has.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

PRIVATE_MODE = 0o600


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (replacing any file there), so that whatever is
    then written into it (SQLite included: its journal copies the file's mode) starts private.
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the umask may only narrow the mode given to open
    finally:
        os.close(fd)


@contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """Write next to ``path`` (same directory, so the rename is atomic), fsync, then rename;
    on any error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
