"""Schema migrations, applied in order on every open (PRAGMA user_version tracks progress).

The runner is ``migrate`` below: sqlite-utils has none (sqlite-migrate, a separate package,
keeps its own table of applied names, while every released ledger counts its steps in
PRAGMA user_version). What a step makes never changes once released. A step uses
sqlite-utils' Table API where it expresses the change (``create``, ``add_column``,
``create_index``, ``create_view``) and SQL where it cannot: CHECK constraints, partial
indexes, and the chained table (ledger.evidence.events_table: verify compares its SQL word
for word, and ``transform()`` rebuilds a table from ``PRAGMA table_info``, which leaves its
generated columns out). The auditor UI describes every column (ledger.evidence.web).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from snapzen.ledger.evidence import events_table
from snapzen.ledger.evidence.events import CHAINED_COLUMNS


def _v1_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS cases (
            case_id TEXT PRIMARY KEY,
            widget_id TEXT NOT NULL,
            day TEXT,                    -- UTC day the chat started (YYYY-MM-DD)
            case_type TEXT,
            started_at TEXT,
            ended_at TEXT,
            status TEXT NOT NULL CHECK (status IN
                ('pending','pushing','synced','withheld','failed','ignored')),
            outcome TEXT,                -- eligible / withheld / not_restricted
            legal_basis TEXT,
            reason TEXT,                 -- why withheld / ignored
            error TEXT,                  -- last failure, one line
            attempts INTEGER NOT NULL DEFAULT 0,
            ticket_id INTEGER,
            batch_id TEXT,
            job_id TEXT,
            pushed_at TEXT,
            synced_at TEXT,
            subject_ref TEXT,            -- HMAC of the visitor email (for Art. 15/17 lookups)
            transfer_draft TEXT,         -- JSON: ledger fields prepared before the push
            raw TEXT,                    -- SnapEngage payload; NULL once the case is terminal
            raw_purged_at TEXT,
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            run_id TEXT
        );
        CREATE INDEX IF NOT EXISTS cases_status ON cases(status);
        CREATE INDEX IF NOT EXISTS cases_widget_day ON cases(widget_id, day);
        CREATE INDEX IF NOT EXISTS cases_batch ON cases(batch_id);
        CREATE INDEX IF NOT EXISTS cases_ticket ON cases(ticket_id);
        CREATE INDEX IF NOT EXISTS cases_subject ON cases(subject_ref);
        """
    )

    # transfers: the chain's table before schema 8 (ledger.evidence.chain), one column each
    # (lists and dicts as JSON text), then prev_hash and the row's hash.
    columns = ", ".join(f"{name} {events_table.column_type(name)}" for name in CHAINED_COLUMNS[1:])
    db.execute(
        f"CREATE TABLE IF NOT EXISTS transfers (seq INTEGER PRIMARY KEY, {columns}, "
        "hash TEXT NOT NULL UNIQUE)"
    )
    indexed = ("subject", "subject_ref"), ("time", "transferred_at"), ("case", "case_id")
    for index, name in (*indexed, ("ticket", "ticket_id"), ("retention", "retention_until")):
        db.execute(f"CREATE INDEX IF NOT EXISTS transfers_{index} ON transfers({name})")
    for trigger in events_table.V8_TRIGGERS:  # the text step 1 always ran, from one source
        db.execute(trigger)
    # state: every case on days before cursor_day is terminal
    db.table("state").create(
        {"widget_id": str, "cursor_day": str, "updated_at": str},
        pk="widget_id",
        not_null={"updated_at"},
        if_not_exists=True,
    )
    counts = ("fetched", "created", "withheld", "failed")
    db.table("runs").create(
        {"run_id": str, "kind": str, "actor": str, "started_at": str, "finished_at": str}
        | {"outcome": str, "exit_code": int, **dict.fromkeys(counts, int)}
        | {"details": str, "error": str},
        pk="run_id",
        not_null={"kind", "started_at"},
        defaults=dict.fromkeys(counts, 0),
        if_not_exists=True,
    )


def _v2_backfill_windows(db: sqlite_utils.Database) -> None:
    """Finished `snapzen backfill` windows (one widget, one UTC day), so a rerun skips them."""
    db.table("backfill_windows").create(
        {"widget_id": str, "day": str, "run_id": str, "actor": str}
        | {"fetched": int, "finished_at": str},
        pk=("widget_id", "day"),
        not_null={"widget_id", "day", "fetched", "finished_at"},
        defaults={"fetched": 0},
        if_not_exists=True,
    )


def _v3_case_expiry(db: sqlite_utils.Database) -> None:
    """cases.expired_at: set (with the `expired` ledger event, in one transaction) once the
    retention sweep saw Zendesk confirm the ticket's deletion; makes the sweep rerunnable."""
    _add_column(db, "cases", "expired_at", str)
    db.execute(
        """CREATE INDEX IF NOT EXISTS cases_expiry_due ON cases(day)
           WHERE status = 'synced' AND expired_at IS NULL"""
    )


def _v4_pending_ready_index(db: sqlite_utils.Database) -> None:
    """Index for ``outbox.ready_cases`` (pending, settled, ``ORDER BY started_at, case_id``):
    without it every batch sorted all pending rows found through cases_status, which grows
    with a backfill's size. (Not a partial index: the planner kept choosing cases_status
    over one, and a temp B-tree sort with it.)"""
    db.table("cases").create_index(
        ["status", "started_at", "case_id"], index_name="cases_ready", if_not_exists=True
    )


def _v5_erased_subjects(db: sqlite_utils.Database) -> None:
    """Subjects erased under Art. 17 (their HMAC only): a chat of theirs that started before
    the erasure is withheld when staged, even one fetched again after a restored backup.
    Rebuilt from the erasure journal by ``snapzen.ledger.rights.erasure_journal.reapply``."""
    db.table("erased_subjects").create(
        {"subject_ref": str, "erased_at": str, "request_id": str},
        pk="subject_ref",
        not_null={"erased_at"},
        if_not_exists=True,
    )


def _v6_identity_and_flags(db: sqlite_utils.Database) -> None:
    """ledger_meta: the ledger's id, creation time and key fingerprint (the file is bound to
    its key: a ledger read with another key would answer subject lookups with nothing).
    case_flags: cases a human must look at (several tickets with one external_id), shown by
    `status`; a flag never deletes or picks a ticket by itself."""
    db.table("ledger_meta").create(
        {"name": str, "value": str}, pk="name", not_null={"value"}, if_not_exists=True
    )
    db.table("case_flags").create(
        {"case_id": str, "kind": str, "ticket_ids": str, "source": str, "details": str}
        | {"flagged_at": str, "resolved_at": str},
        pk=("case_id", "kind"),
        not_null={"case_id", "kind", "flagged_at"},
        if_not_exists=True,
    )


def _v7_decision_log(db: sqlite_utils.Database) -> None:
    """transfers.chain_version (NULL: rows hashed by the version-1 rule, see ledger.chain);
    cases.name_ref (HMAC of the visitor's name, tells people sharing one email apart).
    The table keeps its name: every decision about a case is chained there now, not only
    transfers, and renaming it would break auditors' saved queries."""
    _add_column(db, "transfers", "chain_version", int)
    _add_column(db, "cases", "name_ref", str)
    db.table("transfers").create_index(
        ["event", "case_id"], index_name="transfers_event", if_not_exists=True
    )


def _add_column(db: sqlite_utils.Database, table: str, column: str, kind: type) -> None:
    if column not in db.table(table).columns_dict:  # idempotent: two processes may race to migrate
        db.table(table).add_column(column, kind)


def _v10_period_keys(db: sqlite_utils.Database) -> None:
    """period_keys: one random key per month of chat start, keying the chain's references
    of that month's chats; subject_periods: which chain reference belongs to which person's
    lookup reference and period. Both lose a period's rows when the retention sweep forgets
    it (snapzen.ledger.rights.forget). References chained before this step are indexed here as
    their own lookup reference (the legacy scheme: keyed by the ledger key itself)."""
    from snapzen.ledger.rights.period_keys import CREATE_SQL, index_legacy

    db.executescript(CREATE_SQL)
    with db.conn:  # an INSERT: committed here, as the DDL above is
        index_legacy(db.conn)


def _v11_request_periods(db: sqlite_utils.Database) -> None:
    """Request evidence (requests, access packs, erasures, holds, Art. 19 notices) is keyed
    by request period from now on (snapzen.ledger.rights.request_periods); the rows chained
    before are indexed here as their own lookup reference, and ``legacy_refs`` records where
    the legacy rows end (counted by `snapzen status`)."""
    from snapzen.ledger.rights.period_keys import index_legacy_evidence

    with db.conn:
        index_legacy_evidence(db.conn)


# Append new steps at the end; never edit or reorder a released one.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_backfill_windows,
    _v3_case_expiry,
    _v4_pending_ready_index,
    _v5_erased_subjects,
    _v6_identity_and_flags,
    _v7_decision_log,
    events_table.rebuild_with_records,  # _v8: the chain's rows carry their record
    events_table.move_to_events,  # _v9: the chain's table is `events`
    _v10_period_keys,
    _v11_request_periods,
]

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending steps; returns the resulting schema version."""
    version = schema_version(db)
    for number, step in enumerate(MIGRATIONS, start=1):
        if number > version:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
            version = number
    return version
