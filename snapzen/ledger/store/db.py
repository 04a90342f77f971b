"""Opening the database and running one atomic transaction.

Lock, then open (``locked_ledger``): the one way a command opens the live ledger to write to
it. The writer lock (snapzen.support.lock) is taken first and the database opened only once
it is held, so a command queued with ``--wait`` opens whatever file is at ``ledger.path``
when its turn comes. Opened the other way round, a command queued behind `ledger restore`
kept its connection to the file the restore moved aside and wrote into ``.replaced-…``: a
hold, an erasure and its request were then missing from the live ledger. ``open_ledger``
refuses to open the ledger for writing unless this process holds its lock.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from snapzen.ledger.evidence.events_table import name_old_table
from snapzen.ledger.store.identity import (
    bind,
    chain_binding,
    chained_binding,
    key_matches,
    read_meta,
)
from snapzen.ledger.store.rows import DURABLE
from snapzen.ledger.store.rows import transaction as transaction  # where callers find it
from snapzen.ledger.store.schema import SCHEMA_VERSION, migrate, schema_version
from snapzen.support import clock
from snapzen.support.atomic import PRIVATE_MODE, open_private_binary, private_dir
from snapzen.support.errors import ConfigError
from snapzen.support.lock import holds_writer_lock, writer_lock
from snapzen.support.log import get_logger, once
from snapzen.support.sqlite_uri import read_only_uri

if TYPE_CHECKING:
    from snapzen.support.settings import LedgerSettings

log = get_logger("snapzen.ledger.store.db")


def open_db(
    path: Path | str,
    *,
    read_only: bool = False,
    create: bool = False,
    key: bytes | None = None,
    timeout: float = 30.0,
    label: str = "ledger.path",
) -> sqlite_utils.Database:
    """Open (and migrate, unless read-only) the snapzen ledger at ``path``.

    A missing file is refused (LedgerError, exit 2, naming ``snapzen init``): a command that
    created an empty ledger by itself would import every chat again. ``create=True`` is for
    ``snapzen init`` (through ``create_ledger``) and tests only. With ``key`` the ledger must
    have been made with that key (its fingerprint); a ledger written by a newer snapzen is
    refused before anything is written to it. Every problem is one line naming the setting
    (``label``), the path and the fix."""
    path = Path(path)
    fresh = create and not path.exists()
    try:
        create_file(path) if fresh else _diagnose(path, read_only)
        db = _connect(path, read_only, timeout)
        try:
            _check_and_migrate(db, path, read_only, key, fresh=fresh)
        except BaseException:
            db.conn.close()
            raise
        return db
    except sqlite3.Error as exc:
        problem: Exception = _sqlite_problem(path, exc)
    except LedgerError as exc:
        problem = exc
    raise LedgerError(f"{label}: {problem}") from None


def create_ledger(path: Path | str, key: bytes, now: datetime) -> sqlite_utils.Database:
    """A new, empty ledger bound to ``key`` (refused if ``path`` exists): `snapzen init`."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise LedgerError(
            f"a ledger already exists at {path}; nothing was changed (to replace it with a "
            "backup use `snapzen ledger restore BACKUP`)"
        )
    private_dir(path.parent)
    db = open_db(path, create=True)
    with transaction(db) as conn:
        bind(conn, key, now, origin="init")
    return db


class LedgerError(ConfigError):
    """The ledger file cannot be used as it is (missing, unreadable, another key, newer
    schema...): exit 2, one line with the path and the fix."""


def create_file(path: Path) -> None:
    # 0600 before SQLite sees it: the file holds raw payloads of pending chats, and SQLite
    # gives the -wal and -shm files it creates the database file's mode.
    try:
        open_private_binary(path, exclusive=True).close()
    except FileNotFoundError:
        raise LedgerError(
            f"cannot create the ledger {path}: its directory {path.parent} does not exist"
        ) from None
    except OSError as exc:
        raise LedgerError(f"cannot create the ledger {path}: {exc.strerror}") from None


def _diagnose(path: Path, read_only: bool) -> None:
    """Name the problem before SQLite does: its messages ("unable to open database file",
    "disk I/O error") do not say which of these it is."""
    if path.is_dir():
        raise LedgerError(
            f"{path} is a directory, not a ledger file: set ledger.path to a "
            f"file in it (e.g. {path / 'snapzen.db'})"
        )
    if not path.exists():
        raise LedgerError(
            f"no ledger at {path}: if Zendesk already holds snapzen's tickets (a lost or moved "
            "ledger) create it with `snapzen init --adopt` or restore a backup; on a first "
            "install `snapzen init`; or set ledger.path to the existing one"
        )
    if path.stat().st_size == 0:
        # `touch`, a failed copy: not a ledger. Opening it would make it one (WAL writes a
        # header at once): the implicit creation `snapzen init` exists to prevent.
        raise LedgerError(
            f"{path} is an empty file, not a ledger: remove it and create the ledger with "
            "`snapzen init`, or set ledger.path to the existing one"
        )
    if not os.access(path, os.R_OK):
        raise LedgerError(
            f"cannot read the ledger {path} (permission denied): run snapzen as the user that "
            f"owns it, or fix its owner and mode (chmod 600 {path})"
        )
    if read_only:
        return
    directory = path.parent
    if not os.access(path, os.W_OK) or not os.access(directory, os.W_OK | os.X_OK):
        what = path if not os.access(path, os.W_OK) else directory
        raise LedgerError(
            f"the ledger {path} is read-only ({what} is not writable by this user): make the "
            "file and its directory writable by the user that runs snapzen (SQLite writes "
            "-wal and -shm files beside it)"
        )


def _sqlite_problem(path: Path, exc: sqlite3.Error) -> LedgerError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return LedgerError(
            f"the ledger {path} is locked by another process ({text}): wait for it to end "
            f"(find it with `fuser {path}`), then run the command again"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return LedgerError(
            f"{path} is not a readable snapzen ledger ({text}): put the last good backup in "
            "place with `snapzen ledger restore BACKUP`"
        )
    if "readonly" in text or "read-only" in text:
        return LedgerError(
            f"the ledger {path} is read-only ({text}): make the file and its directory "
            "writable by the user that runs snapzen"
        )
    return LedgerError(f"cannot open the ledger {path}: {text}")


def _connect(path: Path, read_only: bool, timeout: float) -> sqlite_utils.Database:
    if read_only:
        uri = read_only_uri(path)
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # "not a database" now
        return sqlite_utils.Database(conn)
    conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    # WAL lets auditors read while a sync writes; secure_delete overwrites deleted bytes so
    # purged raw payloads (personal data) do not linger in free pages of the file.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={DURABLE}")
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _check_and_migrate(
    db: sqlite_utils.Database, path: Path, read_only: bool, key: bytes | None, *, fresh: bool
) -> None:
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, newer than this snapzen knows "
            f"({SCHEMA_VERSION}): upgrade snapzen; nothing was written to the ledger"
        )
    if version == 0 and not fresh and not db.execute("SELECT 1 FROM sqlite_master").fetchone():
        # An empty file (`touch`, an sqlite3 shell) is not a ledger: migrating it here would
        # be the implicit creation `snapzen init` exists to prevent.
        raise LedgerError(
            f"{path} is not a snapzen ledger (an empty database): point ledger.path at the "
            "ledger, or remove the file and create the ledger with `snapzen init`"
        )
    if key is not None and key_matches(read_meta(db.conn), key) is False:
        raise LedgerError(
            f"the ledger {path} was created with a different ledger.key: set the key it was "
            "created with (its fingerprint does not match); nothing was written"
        )
    if read_only:
        name_old_table(db.conn)  # a ledger before schema 9 reads under today's names
        return
    migrate(db)
    # A ledger made before ledgers were bound stays unbound here: only `snapzen init` and
    # `snapzen ledger restore` bind a file to a key (issue 23), never a command that opens it
    # (a status or a read of an old backup would otherwise bind it to whatever key is set).
    if (
        key is not None
        and "key_fingerprint" in read_meta(db.conn)
        and chained_binding(db.conn) is None
    ):
        # Bound before bindings were chained: chain it once, so the table alone no longer decides.
        with transaction(db) as conn:
            chain_binding(conn, clock.now(), "first-open")


def open_ledger(ledger: LedgerSettings, *, read_only: bool = False) -> sqlite_utils.Database:
    """``open_db`` for the configured ledger, checked against the configured key (if set).

    To write, this process must hold the writer lock (locked_ledger
    takes it, then calls this): a connection opened before the lock was granted may belong
    to a file a restore has since moved aside, and its writes would be lost to the live
    ledger. A caller that forgets is a bug, refused before anything is opened."""
    if not read_only and not holds_writer_lock(ledger.path):
        raise RuntimeError(
            f"{ledger.path} opened for writing without the writer lock: use locked_ledger"
        )
    return open_db(ledger.path, read_only=read_only, key=configured_key(ledger))


def configured_key(ledger: LedgerSettings) -> bytes | None:
    secret = ledger.key.get_secret_value() if ledger.key is not None else ""
    return secret.encode("utf-8") if secret else None


def ensure_ledger(path: Path | str) -> None:
    """Refuse a missing or unusable ledger before a command takes the writer lock (whose
    ``.lock`` file would otherwise be the first thing it creates)."""
    try:
        _diagnose(Path(path), read_only=False)
    except LedgerError as exc:
        raise LedgerError(f"ledger.path: {exc}") from None


def check_ledger(ledger: LedgerSettings) -> None:
    """Everything ``open_ledger`` refuses (missing, another key, newer schema...), read-only:
    for a long-running service, before its loop, so a bad ledger is exit 2 and not an error
    logged every pass."""
    open_ledger(ledger, read_only=True).conn.close()


@contextmanager
def locked_ledger(
    ledger: LedgerSettings, *, wait: bool = False, timeout: float = -1
) -> Iterator[sqlite_utils.Database]:
    """The live ledger opened for writing under the writer lock; on leaving, the WAL is
    checkpointed and the connection closed before the lock is released.

    Raises LockHeld (another writer; after ``timeout`` seconds with ``wait``) before anything
    is opened, and LedgerError (exit 2) for a missing or unusable ledger, before the lock is
    taken (its ``.lock`` file would otherwise be the first thing created there)."""
    ensure_ledger(ledger.path)
    with writer_lock(ledger.path, wait=wait, timeout=timeout):
        db = open_ledger(ledger)  # now, not before: a restore may have swapped the file
        try:
            narrow_modes(ledger.path)
            yield db
        finally:
            checkpoint_wal(db)
            db.conn.close()


def narrow_modes(path: Path | str) -> None:
    """The ledger and its -wal/-shm 0600, as every file snapzen writes: one an older snapzen
    (or a copy by hand) left readable by others holds raw payloads and personal data."""
    for suffix in ("", "-wal", "-shm"):
        name = Path(f"{path}{suffix}")
        try:
            if name.stat().st_mode & 0o777 != PRIVATE_MODE:
                os.chmod(name, PRIVATE_MODE)
                log.warning("ledger_file_mode_narrowed", file=str(name), mode="0600")
        except OSError:
            continue  # absent (no -wal yet), or another user's: nothing to narrow here


def checkpoint_wal(db: sqlite_utils.Database) -> None:
    """Copy the WAL into the database file and truncate it to zero bytes.

    In WAL mode the old page images, including raw payloads the run just purged, stay in the
    ``-wal`` file until a checkpoint; SQLite only does one itself when the last connection
    closes, which never happens while a reader (Datasette, an auditor's shell) is attached."""
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("wal_checkpoint_failed", error=str(exc))
        return
    if busy:
        # Every pass while an auditor's Datasette is open: a warning once, then debug.
        warn = log.warning if once("wal_checkpoint_incomplete") else log.debug
        warn("wal_checkpoint_incomplete", reason="a reader holds an old snapshot")
