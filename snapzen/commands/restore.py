"""`snapzen ledger restore BACKUP`: put a verified backup in place, then catch up with Zendesk.

A backup predates some tickets: synced after it was taken, they are pending (or absent) in
it, and the next sync would create them again. So, under the writer lock (refused while a
sync runs):
1. the backup is copied beside the ledger (``.restoring``, SQLite's backup API: the backup
   itself is only read), the copy migrated to this schema and checked (integrity, hash chain,
   key; an unbound old backup is bound to ledger.key here, by the restore);
2. the ledger being replaced is read for every case it had not finished: the imports it left
   in flight are waited for (stored job ids, then Zendesk's list of unfinished jobs; bounded
   by zendesk.job_timeout_seconds) so none of their tickets appears after the reading;
3. a ``restored`` event naming the backup's chain head is appended, every `snapengage:`
   ticket changed since the older of the backup's newest record and the replaced ledger's
   oldest unfinished case (less a margin) is recorded from Zendesk, in-flight cases the bulk
   read missed are looked up by external_id, and each added case gets its person's
   references (commands.requesters);
4. the rights journal (erasures and requests; keyed and chained, an edited one refused) is
   united with the replaced ledger's own and re-applied;
5. the copy is swapped in so that a crash at any moment leaves the old or the new ledger
   whole (commands.restore_swap); the replaced file keeps a unique
   ``.replaced-<time>-<random>`` name, never deleted: it may be the only copy of evidence.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from snapzen.commands.clients import zendesk_from
from snapzen.commands.inflight import (
    InFlight,
    Waiting,
    log_progress,
    read_in_flight,
    replaced_refs,
    waiting_for,
)
from snapzen.commands.init import remove_db_files
from snapzen.commands.reconcile import ReconcileResult, TicketExport, Via, reconcile
from snapzen.commands.restore_swap import make_standalone, swap_in
from snapzen.commands.run import recorded_run
from snapzen.ledger.evidence.chain import chain_head
from snapzen.ledger.evidence.verify import verify_ledger
from snapzen.ledger.rights.erasure_reapply import (
    JournalChoice,
    ReapplyResult,
    choose,
    restore_union,
)
from snapzen.ledger.store.adopt import record_restored
from snapzen.ledger.store.db import LedgerError, create_file, open_db, transaction
from snapzen.ledger.store.identity import bind, key_matches, read_meta
from snapzen.support import clock
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
    progress: Callable[[str], None] | None = None,
) -> RestoreResult:
    key = require_ledger_key(settings)
    now = now or clock.now()
    path = Path(settings.ledger.path)
    if backup.resolve() == path.resolve():
        raise LedgerError(f"{backup} is the ledger itself: give the backup file to restore")
    if not backup.is_file():
        raise LedgerError(f"backup {backup} is not a file; choose a file `ledger backup` wrote")
    # Before any network call: without the journal (or the operator's statement) people
    # erased since the backup would be sent again.
    journal = choose(
        settings.ledger.erasure_journal_path, key, erasure_journal, no_erasure_journal,
        "ledger restore",
    )  # fmt: skip
    export = sink if sink is not None else zendesk_from(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    restore = _Restore(
        path=path, backup=backup, key=key, now=now, actor=actor,
        journal=journal,
        waiting=waiting_for(settings, progress or log_progress("restore_progress")),
    )  # fmt: skip
    try:
        with writer_lock(path):
            return restore.run(export, via)
    except LockHeld:
        raise LedgerError(
            f"another snapzen process holds the writer lock of {path}: stop it (or let it "
            "finish) before restoring; nothing was changed"
        ) from None


def check_copy(copy: Path, backup: Path, key: bytes, now: datetime) -> tuple[int, str]:
    """Migrate ``copy`` (a copy of ``backup``) to this schema, check it, and bind it to
    ``key`` if it was never bound; its chain head. LedgerError when it cannot be used.

    Migrating the copy first is what lets a backup of any schema snapzen ever wrote be
    checked (the hashes are kept as they were); the backup file itself is never written."""
    db = open_db(copy, key=None, label="backup")  # corrupt, newer schema...
    try:
        conn = db.conn
        meta = read_meta(conn)
        if key_matches(meta, key) is False:
            raise LedgerError(
                f"backup {backup} was created with a different ledger.key: set the key it "
                "was created with; nothing was changed"
            )
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise LedgerError(f"backup {backup} is damaged ({integrity}); choose another one")
        problem = verify_ledger(conn).first_problem
        if problem is not None:
            raise LedgerError(
                f"backup {backup} does not verify (seq {problem.seq}: {problem.message}); "
                "choose another one"
            )
        if "key_fingerprint" not in meta:  # made before ledgers were bound: the restore binds
            with transaction(db) as tx:
                bind(tx, key, now, origin="restore")
        return chain_head(conn)
    finally:
        db.conn.close()


def _newest(conn: sqlite3.Connection) -> datetime | None:
    stamps = [
        conn.execute(sql).fetchone()[0]
        for sql in (
            "SELECT MAX(started_at) FROM runs",
            "SELECT MAX(updated_at) FROM cases",
            "SELECT MAX(recorded_at) FROM events",
        )
    ]
    parsed = [clock.parse(str(s)) for s in stamps if s]
    return max(parsed) if parsed else None


@dataclass
class _Restore:
    path: Path
    backup: Path
    key: bytes
    now: datetime
    actor: str
    journal: JournalChoice
    waiting: Waiting

    def run(self, sink: TicketExport, via: Via) -> RestoreResult:
        staging = self.path.with_name(self.path.name + ".restoring")
        remove_db_files(staging)  # a leftover of a restore that crashed
        try:
            _copy(self.backup, staging)
            head = check_copy(staging, self.backup, self.key, self.now)
            # What the replaced ledger had not finished, and what the backup itself had in
            # flight when it was taken (its own job ids).
            work = read_in_flight(self.path, self.key).merged(read_in_flight(staging, self.key))
            db = open_db(staging, key=self.key, label="backup")
            try:
                result, erasures, aside = self._catch_up(db, sink, via, head, work)
            finally:
                db.conn.close()
            make_standalone(staging)
            replaced = swap_in(staging, self.path, aside)
        finally:
            remove_db_files(staging)
        return RestoreResult(
            path=self.path, backup_head=head, replaced=replaced, reconciliation=result,
            erasures=erasures,
        )  # fmt: skip

    def _catch_up(
        self, db: Any, sink: TicketExport, via: Via, head: tuple[int, str], work: InFlight
    ) -> tuple[ReconcileResult, ReapplyResult, Path | None]:
        # The whole retention window when the backup holds no time at all; back to the
        # replaced ledger's oldest unfinished case when that is older.
        newest = _newest(db.conn) or self.now - timedelta(days=60)
        since = min(newest, work.earliest or newest) - RESTORE_MARGIN
        aside = _aside_name(self.path, self.now) if self.path.exists() else None
        with recorded_run(db, "restore", self.actor, now=clock.reader(self.now)) as run:
            record_restored(
                db,
                self.now,
                backup_name=self.backup.name,
                backup_head=head,
                details={
                    "reconciled_since": since.isoformat(timespec="seconds"),
                    "replaced": aside.name if aside else None,
                    "in_flight": len(work.pushing),
                    "replaced_readable": work.readable,
                },
                actor=self.actor,
                run_id=run.run_id,
            )
            result = reconcile(
                db, sink, since=since, now=self.now, source="restore", actor=self.actor,
                run_id=run.run_id, key=self.key, via=via, work=work, waiting=self.waiting,
                known=lambda ids: replaced_refs(self.path, self.key, ids),
            )  # fmt: skip
            # A backup does not know the erasures and requests made after it: the journal
            # and the ledger it replaces do.
            erasures = restore_union(
                db, self.journal, self.path if self.path.exists() else None, now=self.now,
                actor=self.actor, command="ledger restore",
            )  # fmt: skip
            run.details.update(result.as_dict())
        return result, erasures, aside


def _copy(backup: Path, dest: Path) -> None:
    """SQLite's backup API into a 0600 file (a copy of a WAL file set is not a database)."""
    create_file(dest)
    try:
        src = sqlite3.connect(read_only_uri(backup), uri=True)
        try:
            copy = sqlite3.connect(str(dest))
            try:
                src.backup(copy)
            finally:
                copy.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise LedgerError(
            f"backup {backup} is not a readable ledger ({exc}); choose another one"
        ) from None


def _aside_name(path: Path, now: datetime) -> Path:
    """A name no earlier replaced file has: the time and a random part."""
    stamp = clock.format_compact(now)
    while True:
        aside = path.with_name(f"{path.name}.replaced-{stamp}-{secrets.token_hex(4)}")
        if not aside.exists():
            return aside
