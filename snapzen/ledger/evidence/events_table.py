"""The `events` table (schema 9): every ledger event, chained, and the `transfers` view.

Each row stores the JSON ``record`` its hash covers (chain version 3, see ledger.chain) and
every column an auditor reads is a VIRTUAL column generated from that record, which SQL
cannot UPDATE: editing a value means editing the record, which breaks its hash. The table's
own definition is part of the evidence: ``ledger verify`` refuses an `events` table whose
SQL is not ``EVENTS_SQL`` (a table recreated with plain columns could show values its
records do not hold).

Until schema 9 the table was called `transfers` and the event's time `transferred_at`
(``_definition`` builds that form too: the schema-8 step made it, and verify reads a
schema-8 backup in it). The names now say what they hold: ``events``, ``recorded_at``. The
hashed records keep their keys (``RECORD_KEYS``, ``transferred_at`` among them), or no
older chain would verify: only a column's name differs from its record key (``KEY_OF``).

The `transfers` view holds the restricted transfers only (``event = 'transfer'``), with the
time under the name that is true of them, ``transferred_at``: the Art. 30(1)(e) register
auditors query, and what their saved queries from before schema 9 still find.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from snapzen.ledger.evidence.chain import V2_BODY_SQL, canonical_json
from snapzen.ledger.evidence.events import CHAINED_COLUMNS, KEY_OF, RECORD_COLUMNS, RECORD_KEYS
from snapzen.ledger.store.rows import transaction

if TYPE_CHECKING:
    import sqlite_utils

TABLE = "events"
VIEW = "transfers"
V8_TABLE = "transfers"  # the chain's table at schema 8, its time column `transferred_at`
# The schema version (PRAGMA user_version) from which the chain's rows carry their record.
RECORDS_SCHEMA = 8


def column_type(key: str) -> str:
    """A chained column's type and constraint (by its record key), in every form the chain's
    table ever had (schema 1's plain columns, the generated ones from schema 8)."""
    kind = "INTEGER" if key == "ticket_id" else "TEXT"
    return kind + (
        " NOT NULL" if key in ("event", "case_id", "transferred_at", "prev_hash") else ""
    )


def _definition(table: str, time: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(CREATE TABLE, indexes, append-only triggers) of the chain's table: `events` with its
    time as `recorded_at` (schema 9 on), or `transfers` with `transferred_at`, as the schema-8
    step made it (a schema-8 backup is verified against that form). Never edit the text:
    verify compares the stored SQL with it. Only ``seq``, ``prev_hash``, ``hash``,
    ``chain_version`` and ``record`` are stored; every other column is VIRTUAL, generated
    from the record, which SQL cannot UPDATE. The triggers refuse UPDATE and DELETE (a
    determined owner of the file can drop them; the chain and checkpoints catch that)."""

    def generated(key: str) -> str:
        column = time if key == "transferred_at" else key
        return (
            f"    {column} {column_type(key)} "
            f"GENERATED ALWAYS AS (json_extract(record, '$.{key}')) VIRTUAL,\n"
        )

    sql = (
        f"CREATE TABLE {table} (\n"
        "    seq INTEGER PRIMARY KEY,\n"
        + "".join(generated(key) for key in RECORD_KEYS)
        + "    prev_hash TEXT NOT NULL,\n"
        "    hash TEXT NOT NULL UNIQUE,\n"
        "    chain_version INTEGER,\n"
        "    record TEXT NOT NULL CHECK (json_valid(record))\n"
        ")"
    )
    # decision: a case's rows, and (covering) its latest decision for verify's agreement check.
    indexed = {
        "subject": "subject_ref",
        "time": time,
        "decision": "case_id, event, ticket_id",
        "ticket": "ticket_id",
        "retention": "retention_until",
        "event": "event, case_id",
    }
    indexes = tuple(
        f"CREATE INDEX {table}_{name} ON {table}({cols})" for name, cols in indexed.items()
    )
    triggers = tuple(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
        for verb in ("UPDATE", "DELETE")
    )
    return sql, indexes, triggers


EVENTS_SQL, INDEXES, APPEND_ONLY_TRIGGERS = _definition(TABLE, "recorded_at")
V8_SQL, V8_INDEXES, V8_TRIGGERS = _definition(V8_TABLE, "transferred_at")

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


def columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> set[str]:
    """The column names of ``table`` in ``schema`` ("" for the first table or view of that
    name SQLite finds), lower-cased: SQLite compares column names without case."""
    pragma = f"PRAGMA {schema}.table_info({table})" if schema else f"PRAGMA table_info({table})"
    return {str(row[1]).lower() for row in conn.execute(pragma)}


def has_records(conn: sqlite3.Connection) -> bool:
    """True when the chain's rows carry their record (schema 8 on), False before."""
    return "record" in columns(conn, chained_table(conn))


def altered(conn: sqlite3.Connection) -> str | None:
    """Why the chain's table may no longer derive every column from the hashed records, or
    None. A ledger at schema 8 or later, or any table with a record column, must have
    snapzen's own definition (the schema-8 `transfers` in a backup, `events` from schema 9)
    and no trigger or index that is not snapzen's own (by name and SQL: a trigger can swallow
    or rewrite appended rows, an index rebuilt under a forged definition answers with values
    the records do not hold; snapzen's own may be missing, the chain still shows any edit
    they would have refused); `transfers`, from schema 9, must be snapzen's view of the
    restricted transfers or absent (a missing view is no evidence lost)."""
    schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not has_records(conn) and schema < RECORDS_SCHEMA:
        return None  # a ledger from before schema 8 (a backup, read-only) keeps its old form
    table = chained_table(conn)
    stored = dict(
        conn.execute("SELECT name, sql FROM main.sqlite_master WHERE type IN ('table', 'view')")
    )
    own = _own_objects(table)
    if stored.get(table) != own[table]:
        return (
            f"the {table} table was redefined: its columns may no longer be the hashed "
            "records (compare its SQL in sqlite_master with docs/auditing.md)"
        )
    foreign = [
        f"{kind} {name}"
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM main.sqlite_master WHERE tbl_name = ? "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY name",
            (table,),
        )
        if own.get(name) != sql
    ]
    if foreign:
        return (
            f"{', '.join(foreign)} on {table} is not snapzen's: a trigger can drop or rewrite "
            "appended rows and an index can answer with values the records do not hold"
        )
    if table == TABLE and stored.get(VIEW, own[VIEW]) != own[VIEW]:
        return (
            "transfers is not snapzen's view of the restricted transfers: it may show rows "
            "the chain does not hold (compare its SQL in sqlite_master with docs/auditing.md)"
        )
    return None


def unprotected(conn: sqlite3.Connection) -> str | None:
    """Which of snapzen's append-only triggers on the chain's table is missing, or None. The
    chain still shows any edit they would have refused, but without them the file no longer
    refuses one, and an auditor must hear that."""
    table = chained_table(conn)
    sql = "SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = ?"
    found = {name for (name,) in conn.execute(sql, (table,))}
    missing = [verb for verb in ("UPDATE", "DELETE") if f"{table}_no_{verb.lower()}" not in found]
    if not missing:
        return None
    names = " and ".join(f"{table}_no_{verb.lower()}" for verb in missing)
    return (
        f"trigger {names} missing: {table} no longer refuses {' and '.join(missing)} "
        "(recreate it as docs/auditing.md shows)"
    )


@cache
def _own_objects(table: str) -> dict[str, str]:
    """Our table's, indexes', triggers' and view's SQL as SQLite stores it (it drops IF NOT
    EXISTS); built on first use, not when the CLI imports the ledger package."""
    import sqlite_utils  # only when verifying: the CLI starts without it

    memory = sqlite_utils.Database(memory=True)
    try:
        own = (EVENTS_SQL, *INDEXES, *APPEND_ONLY_TRIGGERS)
        for statement in own if table == TABLE else (V8_SQL, *V8_INDEXES, *V8_TRIGGERS):
            memory.execute(statement)
        if table == TABLE:
            memory.create_view(VIEW, TRANSFERS_VIEW_SELECT)
        return dict(memory.execute("SELECT name, sql FROM sqlite_master WHERE sql NOT NULL"))
    finally:
        memory.close()


_OLD_ROWS_SQL = (
    "SELECT hash, chain_version, CASE WHEN chain_version IS NOT NULL THEN "
    f"CAST({V2_BODY_SQL} AS BLOB) END, {', '.join(CHAINED_COLUMNS)} "
    "FROM {source} ORDER BY seq"
)


def old_rows(conn: sqlite3.Connection, table: str) -> Iterator[tuple[int, str, str, Any, bytes]]:
    """The rows of a chain table from before schema 8, streamed in seq order: seq, prev_hash,
    hash, chain_version and the bytes its version hashed, built from its columns as they are
    now (version 2's by SQLite, version 1's in Python)."""
    source = f"main.{table}"
    if "chain_version" not in columns(conn, table):  # schema 1, read without migrating
        source = f"(SELECT *, NULL AS chain_version FROM {source})"  # every row is version 1
    for stored, version, record, *values in conn.execute(_OLD_ROWS_SQL.format(source=source)):
        row = dict(zip(CHAINED_COLUMNS, values, strict=True))
        if version is None:
            record = canonical_json(row).encode("utf-8")
        yield row["seq"], row["prev_hash"], stored, version, record


def rebuild_with_records(db: sqlite_utils.Database) -> None:
    """Schema 8: an older `transfers` table moves to the record form, in one transaction;
    every row keeps its seq, prev_hash, hash and chain_version, and gets as its record the
    exact JSON its version hashed (``old_rows``). A row edited before the migration therefore
    still fails verify after it: the evidence is carried, not repaired. Before, verify
    rebuilt the hashed bytes from the columns (SQLite's ``json_object``, ~2.5 s per million
    rows); now it hashes the stored record. Idempotent: two processes may race to migrate."""
    with transaction(db) as conn:
        if has_records(conn):
            return
        conn.execute("ALTER TABLE transfers RENAME TO transfers_before_records")
        conn.execute(V8_SQL)
        conn.executemany(
            "INSERT INTO transfers (seq, prev_hash, hash, chain_version, record) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                (*row, record.decode("utf-8"))
                for *row, record in old_rows(conn, "transfers_before_records")
            ),
        )
        _replace(conn, "transfers_before_records", V8_INDEXES + V8_TRIGGERS)


def _replace(conn: sqlite3.Connection, old: str, statements: tuple[str, ...]) -> None:
    # The old table's indexes and append-only triggers go with it, and are made anew.
    conn.execute(f"DROP TABLE {old}")
    for statement in statements:
        conn.execute(statement)


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
    with transaction(db) as conn:
        if chained_table(conn) == TABLE:
            return
        conn.execute(EVENTS_SQL)
        conn.execute(
            "INSERT INTO events (seq, prev_hash, hash, chain_version, record) "
            "SELECT seq, prev_hash, hash, chain_version, record FROM transfers ORDER BY seq"
        )
        _replace(conn, "transfers", INDEXES + APPEND_ONLY_TRIGGERS)
        db.create_view(VIEW, TRANSFERS_VIEW_SELECT)  # joins the open transaction


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
