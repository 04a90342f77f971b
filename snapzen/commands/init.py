"""`snapzen init [--adopt]`: the only way a ledger comes into being.

A sync never creates its ledger: a mistyped path, a lost volume or another working directory
would otherwise start an empty one and import every chat of the retention window again.
For the same reason a plain ``init`` asks Zendesk first how many snapengage tickets it holds
(commands.first_pass) and refuses, exit 2, when there are any. ``--adopt`` first waits for the
import jobs Zendesk lists as unfinished (commands.inflight), then records every `snapengage:`
ticket Zendesk holds (for at least SnapEngage's retention window) with its person's
references, so the first sync creates none of them twice.

The new ledger is built under a temporary name and linked into place only when complete: a
failed adoption (network, credentials) leaves nothing at ``ledger.path`` and can be rerun.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from snapzen.commands.clients import zendesk_from
from snapzen.commands.first_pass import refuse_init
from snapzen.commands.inflight import log_progress, waiting_for
from snapzen.commands.reconcile import ReconcileResult, TicketExport, Via, reconcile
from snapzen.commands.run import recorded_run
from snapzen.ledger.rights.erasure_reapply import ReapplyResult, choose, restore_union
from snapzen.ledger.rights.journal_file import create_empty
from snapzen.ledger.store.db import LedgerError, create_ledger
from snapzen.ledger.store.identity import read_meta
from snapzen.support import clock
from snapzen.support.atomic import private_dir
from snapzen.support.errors import LockHeld
from snapzen.support.lock import writer_lock
from snapzen.support.settings import Settings, require_ledger_key

# Beyond SnapEngage's retention: a chat fetched on its last day may have been imported a day
# or two later, and a day more costs one or two export requests.
ADOPT_MARGIN = timedelta(days=7)


@dataclass
class InitResult:
    path: Path
    ledger_id: str
    adoption: ReconcileResult | None = None
    erasures: ReapplyResult | None = None  # the erasure journal re-applied (with --adopt)


def init_ledger(
    settings: Settings,
    *,
    adopt: bool = False,
    via: Via = Via.incremental,
    sink: TicketExport | None = None,
    now: datetime | None = None,
    actor: str = "cli",
    erasure_journal: Path | None = None,
    no_erasure_journal: bool = False,
    progress: Callable[[str], None] | None = None,
) -> InitResult:
    key = require_ledger_key(settings)
    path = Path(settings.ledger.path)
    now = now or clock.now()
    if path.exists() or path.is_symlink():
        raise LedgerError(
            f"a ledger already exists at {path}; nothing was changed (to replace it with a "
            "backup use `snapzen ledger restore BACKUP`)"
        )
    live = settings.ledger.erasure_journal_path
    journal = None
    if adopt:
        journal = choose(live, key, erasure_journal, no_erasure_journal, "init --adopt")
    elif erasure_journal is not None or no_erasure_journal:
        raise LedgerError("--erasure-journal and --no-erasure-journal go with --adopt")
    if sink is None:
        sink = zendesk_from(settings)
    if not adopt:
        refuse_init(sink)  # one request: snapzen's tickets in Zendesk need --adopt
    private_dir(path.parent)
    partial = path.with_name(path.name + ".init-partial")
    remove_db_files(partial)  # a leftover of an init that failed
    try:
        db = create_ledger(partial, key, now)
        try:
            ledger_id = read_meta(db.conn)["ledger_id"]
            adoption = erasures = None
            # Only an adoption is a run: a plain init records none, so the first pass can
            # still tell a ledger that never synced (commands.first_pass).
            if adopt:
                assert sink is not None and journal is not None
                with recorded_run(db, "init", actor, now=clock.reader(now)) as run:
                    since = now - timedelta(days=settings.snapengage.retention_days) - ADOPT_MARGIN
                    adoption = reconcile(
                        db, sink, since=since, now=now, source="init --adopt", actor=actor,
                        run_id=run.run_id, key=key, via=via,
                        waiting=waiting_for(settings, progress or log_progress("init_progress")),
                    )  # fmt: skip
                    # Erasures and requests made with the lost ledger hold for the new one too.
                    erasures = restore_union(
                        db, journal, None, now=now, actor=actor, command="init --adopt"
                    )
                    run.details.update(adoption.as_dict())
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.conn.close()
        # link, not rename: refuses (EEXIST) if another init won the race meanwhile. Under
        # the writer lock, as every write to ledger.path: never beside a running restore.
        try:
            with writer_lock(path):
                os.link(partial, path)
        except FileExistsError:
            raise LedgerError(
                f"a ledger appeared at {path} while this init ran; nothing was changed"
            ) from None
        except LockHeld:
            raise LedgerError(
                f"another snapzen process holds the writer lock of {path}: let it finish, "
                "then run `snapzen init` again; nothing was changed"
            ) from None
    finally:
        remove_db_files(partial)
    if not adopt:
        create_empty(live)  # a journal exists from the start: a missing one means lost
    return InitResult(path=path, ledger_id=ledger_id, adoption=adoption, erasures=erasures)


def remove_db_files(path: Path) -> None:
    """Remove a database file and its -wal/-shm companions (never the live ledger's)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
