"""Schema migrations, applied in order on every open (PRAGMA user_version tracks progress).

The runner is ``migrate`` below: sqlite-utils has none (sqlite-migrate, a separate package,
keeps its own table of applied names, while every released ledger counts its steps in
PRAGMA user_version). Steps never change once released. A step uses sqlite-utils' Table API
where it expresses the change (``add_column``, ``create_index``, ``create_view``) and SQL
where it cannot: the `-- comments` of a CREATE TABLE (the auditor UI's column descriptions,
ledger.evidence.web), CHECK constraints, partial indexes, and the chained table, which
``transform()`` cannot move (it rebuilds a table from ``PRAGMA table_info``, which leaves
generated columns out, and verify compares the table's SQL word for word).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from snapzen.ledger.evidence.events_table import V8_TRIGGERS, move_to_events, rebuild_with_records


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

        CREATE TABLE IF NOT EXISTS transfers (
            seq INTEGER PRIMARY KEY,
            event TEXT NOT NULL DEFAULT 'transfer',   -- transfer / expired / erased
            case_id TEXT NOT NULL,
            widget_id TEXT,
            subject_ref TEXT,            -- HMAC-SHA256(ledger key, lower(email)); never the email
            origin_country TEXT,
            recipient TEXT,
            destination_country TEXT,
            legal_basis TEXT,
            mechanism_ref TEXT,
            consent_variable TEXT,
            consent_value TEXT,
            consent_source TEXT,
            consent_observed_at TEXT,
            data_categories TEXT,        -- JSON list
            redactions TEXT,             -- JSON {category: count}
            ticket_id INTEGER,
            transferred_at TEXT NOT NULL,
            retention_until TEXT,
            run_id TEXT,
            actor TEXT,
            details TEXT,                -- JSON, for later events
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX IF NOT EXISTS transfers_subject ON transfers(subject_ref);
        CREATE INDEX IF NOT EXISTS transfers_time ON transfers(transferred_at);
        CREATE INDEX IF NOT EXISTS transfers_case ON transfers(case_id);
        CREATE INDEX IF NOT EXISTS transfers_ticket ON transfers(ticket_id);
        CREATE INDEX IF NOT EXISTS transfers_retention ON transfers(retention_until);

        CREATE TABLE IF NOT EXISTS state (
            widget_id TEXT PRIMARY KEY,
            cursor_day TEXT,             -- every case on days before this is terminal
            updated_at TEXT NOT NULL
        );

        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,          -- sync / backfill / retry / retention / erase
            actor TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,                -- running / ok / partial / aborted
            exit_code INTEGER,
            fetched INTEGER DEFAULT 0,
            created INTEGER DEFAULT 0,
            withheld INTEGER DEFAULT 0,
            failed INTEGER DEFAULT 0,
            details TEXT,                -- JSON
            error TEXT
        );
        """
    )
    for trigger in V8_TRIGGERS:  # the text step 1 always ran, from one source
        db.execute(trigger)


def _v2_backfill_windows(db: sqlite_utils.Database) -> None:
    """Finished `snapzen backfill` windows (one widget, one UTC day), so a rerun skips them."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS backfill_windows (
            widget_id TEXT NOT NULL,
            day TEXT NOT NULL,           -- YYYY-MM-DD (UTC)
            run_id TEXT,
            actor TEXT,
            fetched INTEGER NOT NULL DEFAULT 0,
            finished_at TEXT NOT NULL,
            PRIMARY KEY (widget_id, day)
        );
        """
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
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS erased_subjects (
            subject_ref TEXT PRIMARY KEY,
            erased_at TEXT NOT NULL,     -- chats started up to here are never sent
            request_id TEXT
        );
        """
    )


def _v6_identity_and_flags(db: sqlite_utils.Database) -> None:
    """ledger_meta: the ledger's id, creation time and key fingerprint (the file is bound to
    its key: a ledger read with another key would answer subject lookups with nothing).
    case_flags: cases a human must look at (several tickets with one external_id), shown by
    `status`; a flag never deletes or picks a ticket by itself."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS ledger_meta (
            name TEXT PRIMARY KEY,       -- ledger_id / created_at / key_fingerprint / ...
            value TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS case_flags (
            case_id TEXT NOT NULL,
            kind TEXT NOT NULL,          -- duplicate_tickets / ticket_mismatch / ...
            ticket_ids TEXT,             -- JSON list, ascending
            source TEXT,                 -- adopt / restore / recovery
            details TEXT,                -- JSON
            flagged_at TEXT NOT NULL,
            resolved_at TEXT,
            PRIMARY KEY (case_id, kind)
        );
        """
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


def _v8_records(db: sqlite_utils.Database) -> None:
    """transfers.record: each row stores the JSON its hash covers, and the columns are
    generated from it (ledger.evidence.events_table), so verify hashes stored bytes instead of
    rebuilding them. Old rows get the exact JSON their version hashed."""
    rebuild_with_records(db.conn)


def _v9_events(db: sqlite_utils.Database) -> None:
    """The chain's table says what it holds: `transfers` (every event, runs included)
    becomes `events`, its ``transferred_at`` (any event's time) ``recorded_at``; `transfers`
    is now the view of the restricted transfers. The hashed records do not change."""
    move_to_events(db)


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


# Append new steps at the end; never edit or reorder a released one.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_backfill_windows,
    _v3_case_expiry,
    _v4_pending_ready_index,
    _v5_erased_subjects,
    _v6_identity_and_flags,
    _v7_decision_log,
    _v8_records,
    _v9_events,
    _v10_period_keys,
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
