"""The `transfers` table of schema 8 (the chain's table until schema 9 moved it to `events`,
see ledger.events_table): each row stores the JSON ``record`` its hash covers, and every
column an auditor reads is generated from that record. Kept as released: the schema-8
migration step builds this form, and verify reads a schema-8 backup in it.

Why: a hash chain only proves what it covers. Before, the columns were the data and the
hashed bytes had to be rebuilt from them at every verify (SQLite's ``json_object``, ~2.5 s
per million rows, most of ``ledger verify``). Now the record *is* the data: the columns are
VIRTUAL generated columns (``json_extract`` on read), which SQL cannot UPDATE, so editing a
value means editing the record, which breaks its hash; verify hashes the stored bytes
without rebuilding anything. The table's own definition is part of the evidence:
``ledger verify`` refuses a `transfers` table whose SQL is not ``TRANSFERS_SQL`` (a table
recreated with plain columns could show values its records do not hold).

Only ``seq``, ``prev_hash``, ``hash``, ``chain_version`` and ``record`` are stored.
"""

from __future__ import annotations

import sqlite3

from snapzen.ledger.evidence.chain_legacy import CHAINED_COLUMNS, V2_BODY_SQL, canonical_json

# The columns generated from the record, in the order (and with the types) they always had.
RECORD_COLUMNS = CHAINED_COLUMNS[1:-1]
_TYPES = {"ticket_id": "INTEGER"}
_NOT_NULL = frozenset({"event", "case_id", "transferred_at"})


def _generated(column: str) -> str:
    kind = _TYPES.get(column, "TEXT")
    required = " NOT NULL" if column in _NOT_NULL else ""
    return (
        f"    {column} {kind}{required} "
        f"GENERATED ALWAYS AS (json_extract(record, '$.{column}')) VIRTUAL,\n"
    )


# Never edit this text: verify compares the table's stored SQL with it.
TRANSFERS_SQL = (
    "CREATE TABLE transfers (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    + "".join(_generated(column) for column in RECORD_COLUMNS)
    + "    prev_hash TEXT NOT NULL,\n"
    "    hash TEXT NOT NULL UNIQUE,\n"
    "    chain_version INTEGER,\n"
    "    record TEXT NOT NULL CHECK (json_valid(record))\n"
    ")"
)

INDEXES = (
    "CREATE INDEX transfers_subject ON transfers(subject_ref)",
    "CREATE INDEX transfers_time ON transfers(transferred_at)",
    # A case's rows, and (covering) its latest decision for `ledger verify`'s agreement check.
    "CREATE INDEX transfers_decision ON transfers(case_id, event, ticket_id)",
    "CREATE INDEX transfers_ticket ON transfers(ticket_id)",
    "CREATE INDEX transfers_retention ON transfers(retention_until)",
    "CREATE INDEX transfers_event ON transfers(event, case_id)",
)

# The table is append-only: no UPDATE, no DELETE (a determined owner of the file can drop
# these; the chain and checkpoints are what catch that).
APPEND_ONLY_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS transfers_no_update BEFORE UPDATE ON transfers\n"
    "BEGIN SELECT RAISE(ABORT, 'transfers is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS transfers_no_delete BEFORE DELETE ON transfers\n"
    "BEGIN SELECT RAISE(ABORT, 'transfers is append-only: DELETE refused'); END",
)


# The schema version (PRAGMA user_version) from which `transfers` has this form.
RECORDS_SCHEMA = 8
TABLE = "transfers"
# Everything the schema-8 step creates, as it creates it (verify compares a schema-8
# ledger's triggers and indexes with these).
STATEMENTS = (TRANSFERS_SQL, *INDEXES, *APPEND_ONLY_TRIGGERS)


def has_records(conn: sqlite3.Connection) -> bool:
    """True once `transfers` has the record form (schema 8). Column names compare as SQLite
    compares them: without case."""
    columns = conn.execute("PRAGMA main.table_info(transfers)")
    return any(str(row[1]).lower() == "record" for row in columns)


def rebuild_with_records(conn: sqlite3.Connection) -> None:
    """Move an older `transfers` table to the record form, in one transaction; every row
    keeps its seq, prev_hash, hash and chain_version, and gets as its record the exact JSON
    its version hashed, built from its columns as they are now. A row edited before the
    migration therefore still fails verify after it: the evidence is carried, not repaired.
    Idempotent: two processes may race to migrate."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if has_records(conn):
            conn.rollback()
            return
        conn.execute("ALTER TABLE transfers RENAME TO transfers_before_records")
        conn.execute(TRANSFERS_SQL)
        insert = "INSERT INTO transfers (seq, prev_hash, hash, chain_version, record) "
        conn.execute(
            insert + f"SELECT seq, prev_hash, hash, chain_version, {V2_BODY_SQL} "
            "FROM transfers_before_records WHERE chain_version IS NOT NULL"
        )
        old = conn.execute(
            f"SELECT {', '.join(CHAINED_COLUMNS)}, hash FROM transfers_before_records "
            "WHERE chain_version IS NULL"
        )
        names = [*CHAINED_COLUMNS, "hash"]
        conn.executemany(
            insert + "VALUES (?, ?, ?, NULL, ?)",
            (
                (row["seq"], row["prev_hash"], row["hash"], canonical_json(row))
                for row in (dict(zip(names, values, strict=True)) for values in old)
            ),
        )
        # Its indexes and append-only triggers go with it, and are made anew below.
        conn.execute("DROP TABLE transfers_before_records")
        for statement in (*INDEXES, *APPEND_ONLY_TRIGGERS):
            conn.execute(statement)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
