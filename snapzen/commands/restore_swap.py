"""Putting a prepared ledger file in place of the live one, so that a crash at any moment
leaves either the old ledger or the new one whole at ``ledger.path``.

SQLite ties a ``-wal`` file to its database by name only: a new file renamed in while the old
one's ``-wal`` still holds frames gets those frames replayed onto it at the next open (a
damaged ledger that plain verify may not notice). So the steps are, under the writer lock:

1. ``prepared``: the new file is complete and standalone (checkpointed, rollback journal mode,
   no ``-wal``), fsynced, beside the ledger (the caller's work);
2. ``checkpoint``: the old ledger's WAL is checkpointed into its main file and truncated to
   zero bytes (refused if a reader keeps it from finishing: stop `ledger serve`);
3. ``aside``: the old main file gets a second name, ``<ledger>.replaced-<UTC time>-<random>``
   (a hard link, or an exclusive copy where links are not supported; never overwriting an
   earlier one); a non-empty ``-wal`` got one before step 2, kept when step 2 could not
   empty it (a damaged old file), removed when it did;
4. ``companions``: the old ``-wal`` (now empty, or kept aside) and ``-shm`` are removed;
5. ``swap``: one ``rename`` puts the new file at ``ledger.path``; the directory is fsynced.

A crash before step 5 leaves the old ledger at its path (its WAL already in the main file); a
crash after it, the new one. A leftover ``.restoring`` file is removed by the next restore.

``SNAPZEN_TEST_CRASH_AT=<step>`` ends the process at that step (``os._exit``, as a SIGKILL
would): the crash-safety tests use it; it is never needed in production.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from snapzen.ledger.store import files
from snapzen.ledger.store.db import LedgerError
from snapzen.support.atomic import open_private_binary
from snapzen.support.log import get_logger

log = get_logger("snapzen.commands.restore_swap")

CRASH_VARIABLE = "SNAPZEN_TEST_CRASH_AT"
STEPS = ("prepared", "checkpoint", "aside", "companions", "swap", "swapped")


def crash_point(step: str) -> None:
    """End the process here when the crash-safety tests ask for it."""
    if os.environ.get(CRASH_VARIABLE) == step:
        os._exit(137)


def make_standalone(path: Path) -> None:
    """The prepared file whole on its own (ledger.store.files), fsynced."""
    files.make_standalone(path)
    _fsync(path)


def swap_in(prepared: Path, path: Path, aside: Path | None) -> Path | None:
    """Put ``prepared`` at ``path``; the old file's new name, ``aside`` (None when there was
    no old file). ``aside`` must not exist: an earlier replaced file is never overwritten."""
    crash_point("prepared")
    replaced = None
    if path.exists():
        if aside is None:
            raise LedgerError(f"a ledger appeared at {path} during the restore; nothing changed")
        wal, kept_wal = Path(f"{path}-wal"), Path(f"{aside}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            # A second name first: SQLite removes the -wal of a file it cannot read as a
            # WAL database, and that log may hold the old ledger's last transactions.
            _exclusive(wal, kept_wal)
        try:
            emptied = _checkpoint(path)
        except LedgerError:  # a reader: the log is still in place, the extra name is not needed
            kept_wal.unlink(missing_ok=True)
            raise
        if emptied:  # folded into the main file (the link shares the truncated inode)
            kept_wal.unlink(missing_ok=True)
        crash_point("checkpoint")
        replaced = _exclusive(path, aside)
        crash_point("aside")
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        _fsync(path.parent)
        crash_point("companions")
    crash_point("swap")
    os.replace(prepared, path)
    _fsync(path.parent)
    crash_point("swapped")
    return replaced


def _checkpoint(path: Path) -> bool:
    """Checkpoint the old ledger's WAL into its main file and truncate it; True when the WAL
    is now empty (or absent). A ledger too damaged to open keeps its WAL (aside)."""
    wal = Path(f"{path}-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        return True
    try:
        folded = files.fold_wal(path)
    except sqlite3.DatabaseError as exc:
        log.warning("restore_old_wal_kept", error=str(exc))
        return False
    if not folded or (wal.exists() and wal.stat().st_size > 0):
        raise LedgerError(
            f"another process is reading {path} (`snapzen ledger serve`, an sqlite3 shell?): "
            "its write-ahead log cannot be folded into the file while it reads; stop it and "
            "run the restore again (nothing was changed)"
        )
    return True


def _exclusive(source: Path, dest: Path) -> Path:
    """``dest`` names ``source``'s content (a hard link, or an exclusive copy where links are
    not supported), fsynced; an existing ``dest`` is never replaced (LedgerError)."""
    try:
        try:
            os.link(source, dest)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: an exclusive copy instead
            with open_private_binary(dest, exclusive=True) as out, source.open("rb") as src:
                while block := src.read(1 << 20):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
    except FileExistsError:
        raise LedgerError(
            f"{dest} already exists: it is never overwritten; nothing was changed, run the "
            "restore again"
        ) from None
    _fsync(dest.parent)
    return dest


def _fsync(path: Path) -> None:
    """A file's or a directory's content (its names) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
