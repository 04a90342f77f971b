"""`snapzen ledger restore BACKUP`: put a verified backup in place, then catch up with Zendesk.

A backup predates some tickets: synced after it was taken, they are pending (or absent) in
it, and the next sync would create them again. So, under the writer lock (refused while a
sync runs): the backup is checked (integrity, hash chain, key, schema), copied under a
temporary name, a ``restored`` event naming its chain head is appended, every `snapengage:`
ticket changed since the backup (less a margin) is recorded from Zendesk, and only then is
the copy moved into place. The file it replaces is kept beside it (``.replaced-<time>``),
never deleted: it may be the only copy of later evidence.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from snapzen.commands.init import remove_db_files
from snapzen.commands.reconcile import ReconcileResult, TicketExport, Via, reconcile, zendesk_export
from snapzen.ledger.adopt import record_restored
from snapzen.ledger.chain import chain_head
from snapzen.ledger.db import LedgerError, create_file, open_db
from snapzen.ledger.erasure_reapply import JournalChoice, ReapplyResult, choose, restore_union
from snapzen.ledger.runs import new_run_id
from snapzen.ledger.verify import verify_ledger
from snapzen.support.errors import LockHeld
from snapzen.support.lock import writer_lock
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.support.sqlite_uri import read_only_uri

# Tickets whose job finished just after the backup's newest record, clocks a little apart:
# a day more costs an export request or two.
RESTORE_MARGIN = timedelta(days=1)


@dataclass
class RestoreResult:
    path: Path
    backup_head: tuple[int, str]
    replaced: Path | None
    reconciliation: ReconcileResult
    erasures: ReapplyResult


def restore_ledger(
    settings: Settings,
    backup: Path,
    *,
    via: Via = Via.incremental,
    sink: TicketExport | None = None,
    now: datetime | None = None,
    actor: str = "cli",
    erasure_journal: Path | None = None,
    no_erasure_journal: bool = False,
) -> RestoreResult:
    key = require_ledger_key(settings)
    now = now or datetime.now(UTC)
    path = Path(settings.ledger.path)
    if backup.resolve() == path.resolve():
        raise LedgerError(f"{backup} is the ledger itself: give the backup file to restore")
    journal = choose(
        settings.ledger.erasure_journal_path, key, erasure_journal, no_erasure_journal,
        "ledger restore",
    )  # fmt: skip
    head, newest = check_backup(backup, key)
    export = sink if sink is not None else zendesk_export(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        with writer_lock(path):
            return _restore_locked(
                path, backup, key, head, newest, sink=export, via=via, now=now, actor=actor,
                journal=journal,
            )  # fmt: skip
    except LockHeld:
        raise LedgerError(
            f"another snapzen process holds the writer lock of {path}: stop it (or let it "
            "finish) before restoring; nothing was changed"
        ) from None


def check_backup(backup: Path, key: bytes) -> tuple[tuple[int, str], datetime | None]:
    """The backup's chain head and newest recorded time; LedgerError when it cannot be used."""
    db = open_db(backup, read_only=True, key=key, label="backup")  # corrupt, other key...
    try:
        conn = db.conn
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise LedgerError(f"backup {backup} is damaged ({integrity}); choose another one")
        verified = verify_ledger(conn)
        problem = verified.first_problem
        if problem is not None:
            raise LedgerError(
                f"backup {backup} does not verify (seq {problem.seq}: {problem.message}); "
                "choose another one"
            )
        return chain_head(conn), _newest(conn)
    finally:
        db.conn.close()


def _newest(conn: sqlite3.Connection) -> datetime | None:
    stamps = [
        conn.execute(sql).fetchone()[0]
        for sql in (
            "SELECT MAX(started_at) FROM runs",
            "SELECT MAX(updated_at) FROM cases",
            "SELECT MAX(transferred_at) FROM transfers",
        )
    ]
    parsed = [
        datetime.fromisoformat(str(s).replace("Z", "+00:00")).astimezone(UTC) for s in stamps if s
    ]
    return max(parsed) if parsed else None


def _restore_locked(
    path: Path,
    backup: Path,
    key: bytes,
    head: tuple[int, str],
    newest: datetime | None,
    *,
    sink: TicketExport,
    via: Via,
    now: datetime,
    actor: str,
    journal: JournalChoice,
) -> RestoreResult:
    staging = path.with_name(path.name + ".restoring")
    remove_db_files(staging)
    try:
        _copy(backup, staging)
        db = open_db(
            staging, key=key, label="backup"
        )  # migrates an older backup; binds an unbound one
        try:
            # The whole retention window when the backup holds no time at all.
            since = (newest or now - timedelta(days=60)) - RESTORE_MARGIN
            run_id = new_run_id("restore")
            replaced = _aside_name(path, now) if path.exists() else None
            record_restored(
                db,
                now,
                backup_name=backup.name,
                backup_head=head,
                details={
                    "reconciled_since": since.isoformat(timespec="seconds"),
                    "replaced": replaced.name if replaced else None,
                },
                actor=actor,
                run_id=run_id,
            )
            result = reconcile(
                db, sink, since=since, now=now, source="restore", actor=actor,
                run_id=run_id, via=via,
            )  # fmt: skip
            # A backup does not know the erasures and requests made after it: the journal
            # and the ledger it replaces do.
            erasures = restore_union(
                db, journal, path if path.exists() else None, now=now, actor=actor,
                command="ledger restore",
            )  # fmt: skip
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.conn.close()
        if replaced is not None:
            for suffix in ("", "-wal", "-shm"):
                current = Path(f"{path}{suffix}")
                if current.exists():
                    current.rename(Path(f"{replaced}{suffix}"))
        os.replace(staging, path)
    finally:
        remove_db_files(staging)
    return RestoreResult(
        path=path, backup_head=head, replaced=replaced, reconciliation=result, erasures=erasures
    )


def _copy(backup: Path, dest: Path) -> None:
    """SQLite's backup API into a 0600 file (a copy of a WAL file set is not a database)."""
    create_file(dest)
    src = sqlite3.connect(read_only_uri(backup), uri=True)
    try:
        copy = sqlite3.connect(str(dest))
        try:
            src.backup(copy)
        finally:
            copy.close()
    finally:
        src.close()


def _aside_name(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return path.with_name(f"{path.name}.replaced-{stamp}")
