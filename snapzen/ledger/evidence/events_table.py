"""The `events` table (schema 9): every ledger event, chained, and the `transfers` view.

Each row stores the JSON ``record`` its hash covers (chain version 3, see ledger.chain) and
every column an auditor reads is a VIRTUAL column generated from that record, which SQL
cannot UPDATE: editing a value means editing the record, which breaks its hash. The table's
own definition is part of the evidence: ``ledger verify`` refuses an `events` table whose
SQL is not ``EVENTS_SQL`` (a table recreated with plain columns could show values its
records do not hold).

Until schema 9 the table was called `transfers` and the event's time `transferred_at`
(transfers_table_v8 keeps that form for the schema-8 step and for backups read as they
are). The names now say what they hold: ``events``, ``recorded_at``. The hashed records keep
their keys (``RECORD_KEYS``, ``transferred_at`` among them), or no older chain would verify:
only a column's name differs from its record key (``KEY_OF``).

The `transfers` view holds the restricted transfers only (``event = 'transfer'``), with the
time under the name that is true of them, ``transferred_at``: the Art. 30(1)(e) register
auditors query, and what their saved queries from before schema 9 still find.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from typing import TYPE_CHECKING

from snapzen.ledger.evidence.chain_legacy import CHAINED_COLUMNS
from snapzen.ledger.evidence.transfers_table_v8 import STATEMENTS as V8_STATEMENTS
from snapzen.ledger.evidence.transfers_table_v8 import TABLE as V8_TABLE
from snapzen.ledger.evidence.transfers_table_v8 import TRANSFERS_SQL as V8_TABLE_SQL

if TYPE_CHECKING:
    import sqlite_utils

# The hashed record's keys, in the order they are written; never renamed.
RECORD_KEYS = CHAINED_COLUMNS[1:-1]
# A column whose name is not its record key: column -> key.
KEY_OF = {"recorded_at": "transferred_at"}
# The columns generated from the record, in record order.
RECORD_COLUMNS = tuple({key: col for col, key in KEY_OF.items()}.get(k, k) for k in RECORD_KEYS)
_TYPES = {"ticket_id": "INTEGER"}
_NOT_NULL = frozenset({"event", "case_id", "recorded_at"})

TABLE = "events"
VIEW = "transfers"
# The schema version (PRAGMA user_version) from which the chain is in `events`.
EVENTS_SCHEMA = 9


def _generated(column: str) -> str:
    kind = _TYPES.get(column, "TEXT")
    required = " NOT NULL" if column in _NOT_NULL else ""
    key = KEY_OF.get(column, column)
    return (
        f"    {column} {kind}{required} "
        f"GENERATED ALWAYS AS (json_extract(record, '$.{key}')) VIRTUAL,\n"
    )


# Never edit this text: verify compares the table's stored SQL with it.
EVENTS_SQL = (
    "CREATE TABLE events (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    + "".join(_generated(column) for column in RECORD_COLUMNS)
    + "    prev_hash TEXT NOT NULL,\n"
    "    hash TEXT NOT NULL UNIQUE,\n"
    "    chain_version INTEGER,\n"
    "    record TEXT NOT NULL CHECK (json_valid(record))\n"
    ")"
)

INDEXES = (
    "CREATE INDEX events_subject ON events(subject_ref)",
    "CREATE INDEX events_time ON events(recorded_at)",
    # A case's rows, and (covering) its latest decision for `ledger verify`'s agreement check.
    "CREATE INDEX events_decision ON events(case_id, event, ticket_id)",
    "CREATE INDEX events_ticket ON events(ticket_id)",
    "CREATE INDEX events_retention ON events(retention_until)",
    "CREATE INDEX events_event ON events(event, case_id)",
)

# The table is append-only: no UPDATE, no DELETE (a determined owner of the file can drop
# these; the chain and checkpoints are what catch that).
APPEND_ONLY_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events\n"
    "BEGIN SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events\n"
    "BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END",
)

# The restricted transfers, as the Art. 30(1)(e) register shows them.
_VIEW_COLUMNS = [c for c in RECORD_COLUMNS if c not in ("event", "recorded_at")]
TRANSFERS_VIEW_SELECT = (
    f"SELECT seq, recorded_at AS transferred_at, {', '.join(_VIEW_COLUMNS)}, hash "
    "FROM events WHERE event = 'transfer'"
)


def chained_table(conn: sqlite3.Connection) -> str:
    """The table holding the chain: `events`, or `transfers` in a ledger before schema 9
    (a backup opened read-only, which is never migrated in place)."""
    found = conn.execute(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    return TABLE if found else V8_TABLE


def has_records(conn: sqlite3.Connection) -> bool:
    """True when the chain's rows carry their record (schema 8 on), False before. Column
    names compare as SQLite compares them: without case."""
    columns = conn.execute(f"PRAGMA main.table_info({chained_table(conn)})")
    return any(str(row[1]).lower() == "record" for row in columns)


def stored_sql(conn: sqlite3.Connection, name: str) -> tuple[str, str] | None:
    """(type, SQL) of the table or view called ``name``, or None."""
    row = conn.execute(
        "SELECT type, sql FROM main.sqlite_master WHERE name = ? AND type IN ('table', 'view')",
        (name,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def expected_table_sql(table: str) -> str:
    return EVENTS_SQL if table == TABLE else V8_TABLE_SQL


def foreign_objects(conn: sqlite3.Connection, table: str) -> list[str]:
    """Triggers and indexes on the chained ``table`` that are not snapzen's own (by name and
    SQL). A trigger can swallow or rewrite the rows snapzen appends, and an index rebuilt
    under a forged definition answers queries with values the records do not hold; snapzen's
    own may be missing (the chain still shows any edit they would have refused)."""
    own = _own_objects(table)
    return [
        f"{kind} {name}"
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM main.sqlite_master WHERE tbl_name = ? "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY name",
            (table,),
        )
        if own.get(name) != sql
    ]


def view_altered(conn: sqlite3.Connection) -> bool:
    """A `transfers` that is not snapzen's view (another query, or a table put in its place)
    would show auditors rows the chain does not hold. A missing view is no evidence lost."""
    found = stored_sql(conn, VIEW)
    return found is not None and found != ("view", _own_view_sql())


@cache
def _own_objects(table: str) -> dict[str, str]:
    """Our indexes' and triggers' SQL as SQLite stores it (it drops IF NOT EXISTS); built on
    first use, not when the CLI imports the ledger package."""
    own = (EVENTS_SQL, *INDEXES, *APPEND_ONLY_TRIGGERS)
    statements = own if table == TABLE else V8_STATEMENTS
    memory = sqlite3.connect(":memory:")
    try:
        for statement in statements:
            memory.execute(statement)
        rows = memory.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            "AND sql IS NOT NULL"
        )
        return {str(name): str(sql) for name, sql in rows}
    finally:
        memory.close()


@cache
def _own_view_sql() -> str:
    import sqlite_utils  # only when verifying: the CLI starts without it

    memory = sqlite_utils.Database(memory=True)
    try:
        memory.execute(EVENTS_SQL)
        memory.create_view(VIEW, TRANSFERS_VIEW_SELECT)
        return str(
            memory.execute("SELECT sql FROM sqlite_master WHERE name = ?", (VIEW,)).fetchone()[0]
        )
    finally:
        memory.close()


def move_to_events(db: sqlite_utils.Database) -> None:
    """Schema 9: the chain moves from `transfers` to `events`, ``transferred_at`` becomes
    ``recorded_at``, and `transfers` becomes the view of the restricted transfers. Every row
    keeps its seq, prev_hash, hash, chain_version and record, byte for byte: the records are
    what the hashes cover, so every chain verifies as before. One transaction; idempotent
    (two processes may race to migrate).

    Written in SQL, not with sqlite-utils' ``transform()``: that rebuilds a table from
    ``PRAGMA table_info``, which leaves out generated columns (every column here but five),
    and verify compares the table's SQL with ``EVENTS_SQL`` word for word. The view is made
    with sqlite-utils' ``create_view``."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if chained_table(conn) == TABLE:
            conn.rollback()
            return
        conn.execute(EVENTS_SQL)
        conn.execute(
            "INSERT INTO events (seq, prev_hash, hash, chain_version, record) "
            "SELECT seq, prev_hash, hash, chain_version, record FROM transfers ORDER BY seq"
        )
        # Its indexes and append-only triggers go with it, and are made anew below.
        conn.execute("DROP TABLE transfers")
        for statement in (*INDEXES, *APPEND_ONLY_TRIGGERS):
            conn.execute(statement)
        db.create_view(VIEW, TRANSFERS_VIEW_SELECT)  # joins the open transaction
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def name_old_table(conn: sqlite3.Connection) -> None:
    """A ledger before schema 9 opened read-only (a backup, or a ledger no command has
    migrated yet): a TEMP view `events` over its `transfers` table, under today's column
    names, so every read works on it unchanged. Temporary objects live in this connection
    only: the file is not touched. ``chained_table`` (verify) still reads the table itself."""
    if chained_table(conn) == TABLE:
        return
    columns = [str(row[1]) for row in conn.execute("PRAGMA main.table_xinfo(transfers)")]
    if not columns:
        return
    named = {key: col for col, key in KEY_OF.items()}
    select = ", ".join(
        f"{column} AS {named[column]}" if column in named else column for column in columns
    )
    conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS events AS SELECT {select} FROM main.transfers")
