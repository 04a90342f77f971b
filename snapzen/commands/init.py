"""How a ledger comes into being: `snapzen init [--adopt]` and `snapzen ledger restore BACKUP`.

A sync never creates its ledger: a mistyped path, a lost volume or another working directory
would otherwise start an empty one and import every chat of the retention window again. For
the same reason a plain ``init``, and the first `sync`/`backfill`/`retry` of a ledger that never
synced, adopted nor restored, ask Zendesk one cheap question (Search's result count for the
``snapengage`` tag) and refuse, exit 2, when the answer is not zero (Search lags writes by
minutes: tickets imported in the last minutes may not be counted yet, older ones always are).

``init --adopt`` first waits for the import jobs Zendesk lists as unfinished
(commands.reconcile), then records every `snapengage:` ticket Zendesk holds (for at least
SnapEngage's retention window) with its person's references, so the first sync creates none of
them twice. The new ledger is built under a temporary name and linked into place only when
complete: a failed adoption (network, credentials) leaves nothing at ``ledger.path``.

A backup predates some tickets: synced after it was taken, they are pending (or absent) in it,
and the next sync would create them again. So a restore, under the writer lock (refused while
a sync runs):
1. copies the backup beside the ledger (``.restoring``, SQLite's backup API: the backup itself
   is only read), migrates the copy to this schema and checks it (integrity, hash chain, key;
   an unbound old backup is bound to ledger.key here, by the restore);
2. reads the ledger being replaced for every case it had not finished: the imports it left in
   flight are waited for (stored job ids, then Zendesk's list of unfinished jobs; bounded by
   zendesk.job_timeout_seconds) so none of their tickets appears after the reading;
3. appends a ``restored`` event naming the backup's chain head, records from Zendesk every
   `snapengage:` ticket changed since the older of the backup's newest record and the replaced
   ledger's oldest unfinished case (less a margin), looks up by external_id the in-flight
   cases the bulk read missed, and gives each added case its person's references
   (commands.requesters);
4. unites the rights journal (erasures and requests; keyed and chained, an edited one refused)
   with the replaced ledger's own and re-applies it;
5. swaps the copy in so that a crash at any moment leaves the old or the new ledger whole
   (commands.restore_swap); the replaced file keeps a unique ``.replaced-<time>-<random>``
   name, never deleted: it may be the only copy of evidence.
Adoption and restore share one catch-up, ``reconcile.catch_up`` (``CatchUp``: how, by whom,
with which journal).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from snapzen.clients.search_lag import RecentReads, recently_changed
from snapzen.commands.clients import zendesk_from
from snapzen.commands.reconcile import CatchUp, ReconcileResult, catch_up, read_in_flight
from snapzen.commands.restore_swap import make_standalone, swap_in
from snapzen.ledger.evidence.agreement import check_tables
from snapzen.ledger.evidence.chain import chain_head
from snapzen.ledger.evidence.verify import verify_ledger
from snapzen.ledger.rights.erasure_reapply import JournalChoice, ReapplyResult, choose
from snapzen.ledger.rights.journal_file import create_empty
from snapzen.ledger.store import files, queries
from snapzen.ledger.store.adopt import record_restored
from snapzen.ledger.store.db import LedgerError, checkpoint_wal, create_ledger, open_db, transaction
from snapzen.ledger.store.files import copy_database
from snapzen.ledger.store.identity import bind, key_matches, read_meta
from snapzen.support import clock
from snapzen.support.atomic import private_dir
from snapzen.support.errors import ConfigError, LockHeld
from snapzen.support.lock import writer_lock
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings, require_ledger_key

log = get_logger("snapzen.commands.init")

# Beyond SnapEngage's retention: a chat fetched on its last day may have been imported a day
# or two later, and a day more costs one or two export requests.
ADOPT_MARGIN = timedelta(days=7)
# Tickets whose job finished just after the backup's newest record, clocks a little apart:
# a day more costs an export request or two.
RESTORE_MARGIN = timedelta(days=1)


# ---------------------------------------------------------------- snapzen's tickets first


@runtime_checkable
class TicketCount(Protocol):
    def search_count(self, query: str) -> int: ...


class TicketsExist(ConfigError):
    """Zendesk holds snapzen's tickets and this ledger knows none of them (exit 2)."""


def snapzen_tickets(sink: object) -> int:
    """How many live tickets carry the ``snapengage`` tag (0: a sink that cannot say): search's
    count or, when search finds none, those changed within ``SEARCH_LAG`` (search indexes a
    ticket minutes late: a sync a moment ago from another ledger is not counted yet)."""
    if not isinstance(sink, TicketCount):
        return 0
    count = sink.search_count("type:ticket tags:snapengage")
    if not count and isinstance(sink, RecentReads):
        recent = {
            ticket.get("id")
            for page in recently_changed(sink, clock.now())
            for ticket in page
            if "snapengage" in (ticket.get("tags") or ()) and ticket.get("status") != "deleted"
        }
        count = len(recent)
    log.info("zendesk_snapzen_tickets_counted", tickets=count)
    return count


def refuse_tickets(sink: object, ledger: str, done: str) -> None:
    """TicketsExist (exit 2) when Zendesk holds snapzen's tickets that ``ledger`` (what has no
    record of them) would import again; ``done``: what was not done."""
    if count := snapzen_tickets(sink):
        raise TicketsExist(
            f"{ledger} has no record of the {count} ticket(s) from snapzen (tag snapengage) "
            "Zendesk already holds and would import their chats again: record them with "
            f"`snapzen init --adopt` (or restore a backup with `snapzen ledger restore BACKUP`); "
            f"nothing was {done}"
        )


def refuse_first_pass(conn: sqlite3.Connection, sink: object, path: object) -> None:
    """Before the first pass of a ledger that never synced, adopted nor restored (the key
    binding `init` chains is the one event a new ledger holds): refuse if Zendesk has
    tickets (remove the empty ledger first, then adopt)."""
    if queries.never_synced(conn):
        refuse_tickets(sink, f"the ledger {path}, which has never synced (remove it),", "sent")


# ---------------------------------------------------------------- the catch-up's options


def _prepared(
    settings: Settings, how: CatchUp | None, command: str | None
) -> tuple[CatchUp, JournalChoice | None]:
    """``how`` with its Zendesk client filled in, and (for ``command``) the erasure journal to
    re-apply: chosen before any network call (without it, people erased since would be sent
    again)."""
    how = how or CatchUp()
    key = require_ledger_key(settings)
    path = settings.ledger.erasure_journal_path
    journal = (
        choose(path, key, how.erasure_journal, how.no_erasure_journal, command) if command else None
    )
    return replace(how, sink=how.sink or zendesk_from(settings)), journal


@contextmanager
def _writer_lock(path: Path, then: str) -> Iterator[None]:
    try:
        with writer_lock(path):
            yield
    except LockHeld:
        raise LedgerError(
            f"another snapzen process holds the writer lock of {path}: {then}; nothing was changed"
        ) from None


# ---------------------------------------------------------------- snapzen init


@dataclass
class InitResult:
    path: Path
    ledger_id: str
    adoption: ReconcileResult | None = None
    erasures: ReapplyResult | None = None  # the erasure journal re-applied (with --adopt)


def init_ledger(
    settings: Settings, how: CatchUp | None = None, *, adopt: bool = False
) -> InitResult:
    """A new ledger at ``ledger.path`` (with ``adopt``, holding what Zendesk already has)."""
    key = require_ledger_key(settings)
    path = Path(settings.ledger.path)
    if path.exists() or path.is_symlink():
        raise LedgerError(
            f"a ledger already exists at {path}; nothing was changed (to replace it with a "
            "backup use `snapzen ledger restore BACKUP`)"
        )
    if not adopt and how and (how.erasure_journal is not None or how.no_erasure_journal):
        raise LedgerError("--erasure-journal and --no-erasure-journal go with --adopt")
    how, journal = _prepared(settings, how, "init --adopt" if adopt else None)
    now = how.now
    if not adopt:  # snapzen's tickets need --adopt
        refuse_tickets(how.sink, "A new empty ledger", "created")
    private_dir(path.parent)
    partial = path.with_name(path.name + ".init-partial")
    remove_db_files(partial)  # a leftover of an init that failed
    try:
        db = create_ledger(partial, key, now)
        try:
            result = InitResult(path, read_meta(db.conn)["ledger_id"])
            # Only an adoption is a run: a plain init records none, so the first pass can
            # still tell a ledger that never synced (refuse_first_pass).
            if journal is not None:  # adopt
                since = now - timedelta(days=settings.snapengage.retention_days) - ADOPT_MARGIN
                result.adoption, result.erasures = catch_up(
                    db, settings, how, journal, "init", since=since
                )
            checkpoint_wal(db)
        finally:
            db.conn.close()
        # link, not rename: refuses (EEXIST) if another init won the race meanwhile. Under
        # the writer lock, as every write to ledger.path: never beside a running restore.
        try:
            with _writer_lock(path, "let it finish, then run `snapzen init` again"):
                os.link(partial, path)
        except FileExistsError:
            raise LedgerError(
                f"a ledger appeared at {path} while this init ran; nothing was changed"
            ) from None
    finally:
        remove_db_files(partial)
    if not adopt:  # a journal exists from the start: a missing one means lost
        create_empty(settings.ledger.erasure_journal_path)
    return result


def remove_db_files(path: Path) -> None:
    """Remove a database file and its -wal/-shm companions (never the live ledger's)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------- snapzen ledger restore


@dataclass
class RestoreResult:
    path: Path
    backup_head: tuple[int, str]
    replaced: Path | None
    reconciliation: ReconcileResult
    erasures: ReapplyResult


def restore_ledger(settings: Settings, backup: Path, how: CatchUp | None = None) -> RestoreResult:
    """Put the verified ``backup`` in place of the ledger, then catch up with Zendesk."""
    key = require_ledger_key(settings)
    path = Path(settings.ledger.path)
    if backup.resolve() == path.resolve():
        raise LedgerError(f"{backup} is the ledger itself: give the backup file to restore")
    if not backup.is_file():
        raise LedgerError(f"backup {backup} is not a file; choose a file `ledger backup` wrote")
    how, journal = _prepared(settings, how, "ledger restore")
    assert journal is not None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_name(path.name + ".restoring")
    with _writer_lock(path, "stop it (or let it finish) before restoring"):
        remove_db_files(staging)  # a leftover of a restore that crashed
        try:
            try:
                copy_database(backup, staging)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(
                    f"backup {backup} is not a readable ledger ({exc}); choose another one"
                ) from None
            head = check_copy(staging, backup, key, how.now)
            # What the replaced ledger had not finished, and what the backup itself had in
            # flight when it was taken (its own job ids).
            work = read_in_flight(path, key).merged(read_in_flight(staging, key))
            db = open_db(staging, key=key, label="backup")
            try:
                # The whole retention window when the backup holds no time at all; back to the
                # replaced ledger's oldest unfinished case when that is older.
                newest = _newest(db.conn) or how.now - timedelta(days=60)
                since = min(newest, work.earliest or newest) - RESTORE_MARGIN
                aside = _aside_name(path, how.now) if path.exists() else None
                details = {
                    "reconciled_since": since.isoformat(timespec="seconds"),
                    "replaced": aside.name if aside else None,
                    "in_flight": len(work.pushing),
                    "replaced_readable": work.readable,
                }
                result, erasures = catch_up(
                    db,
                    settings,
                    how,
                    journal,
                    "restore",
                    since=since,
                    work=work,
                    replaced=path if path.exists() else None,
                    before=lambda run_id: record_restored(
                        db,
                        how.now,
                        backup_name=backup.name,
                        backup_head=head,
                        details=details,
                        actor=how.actor,
                        run_id=run_id,
                    ),
                )
            finally:
                db.conn.close()
            make_standalone(staging)
            replaced = swap_in(staging, path, aside)
        finally:
            remove_db_files(staging)
    return RestoreResult(path, head, replaced, result, erasures)


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
        integrity = files.integrity(conn)
        if integrity != "ok":
            raise LedgerError(f"backup {backup} is damaged ({integrity}); choose another one")
        problem = verify_ledger(conn).first_problem
        if problem is not None:
            raise LedgerError(
                f"backup {backup} does not verify (seq {problem.seq}: {problem.message}); "
                "choose another one"
            )
        # The working tables are what the next pass acts on (erased people, cases already
        # decided): a backup whose tables were edited to disagree with its own chain, as
        # `ledger verify` would name, is refused like a broken chain.
        disagreements = check_tables(conn).problems
        if disagreements:
            first = disagreements[0]
            raise LedgerError(
                f"backup {backup} disagrees with its own chain ({first.kind}: {first.message}); "
                "choose another one"
            )
        if "key_fingerprint" not in meta:  # made before ledgers were bound: the restore binds
            with transaction(db) as tx:
                bind(tx, key, now, origin="restore")
        return chain_head(conn)
    finally:
        db.conn.close()


def _newest(conn: sqlite3.Connection) -> datetime | None:
    return max(map(clock.parse, queries.newest_times(conn)), default=None)


def _aside_name(path: Path, now: datetime) -> Path:
    """A name no earlier replaced file has: the time and a random part."""
    stamp = clock.format_compact(now)
    while True:
        aside = path.with_name(f"{path.name}.replaced-{stamp}-{secrets.token_hex(4)}")
        if not aside.exists():
            return aside
