"""The ledger's hash chain: appending rows, and the bytes each row's hash covers.

Version 3 (written now, schema 8 on): each row stores ``record``, the JSON object of its
non-empty content columns (``RECORD_COLUMNS``, in that order, each under its record key:
``recorded_at`` under ``transferred_at``, its name before schema 9; the table's columns are
generated from it, see ledger.events_table), and

    hash = SHA-256( prev_hash || "\\n" || seq in decimal || "\\n" || record )

so an auditor recomputes any row with the ``sqlite3`` shell and ``sha256sum`` alone
(``V3_HASHED_SQL``), and verification hashes stored bytes without rebuilding them. Versions
1 and 2 (``chain_legacy``) hashed ``prev_hash || "\\n" || record`` with ``seq`` and
``prev_hash`` inside the record; their rows stay verifiable.

Every version covers ``seq`` and ``prev_hash``, so reordering, insertion, deletion or edits
all break the chain. The first row's prev_hash is GENESIS.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from snapzen.ledger.evidence.chain_legacy import CHAINED_COLUMNS as CHAINED_COLUMNS  # re-exported
from snapzen.ledger.evidence.chain_legacy import SORTED, json_text
from snapzen.ledger.evidence.chain_legacy import canonical_json as canonical_json  # re-exported
from snapzen.ledger.evidence.chain_legacy import plain_json as plain_json  # re-exported: outbox
from snapzen.ledger.evidence.chain_legacy import row_hash as row_hash  # re-exported: version 1
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.evidence.events_table import KEY_OF, RECORD_COLUMNS
from snapzen.ledger.rights.period_keys import pseudonymize
from snapzen.ledger.rights.subjects import subject_ref as subject_ref  # re-exported: older callers
from snapzen.support.errors import FatalError

GENESIS = "0" * 64
CHAIN_VERSION = 3

# The exact bytes a version-3 row's hash covers, in SQL (for an auditor's sqlite3 shell).
V3_HASHED_SQL = "CAST(prev_hash || char(10) || seq || char(10) || record AS BLOB)"


def hashed_bytes(seq: int, prev_hash: str, chain_version: int | None, record: bytes) -> bytes:
    """What the hash of a row with this record covers, for every version that has one."""
    if chain_version == CHAIN_VERSION:
        return b"%s\n%d\n%s" % (prev_hash.encode("ascii"), seq, record)
    return b"%s\n%s" % (prev_hash.encode("ascii"), record)


def row_digest(seq: int, prev_hash: str, chain_version: int | None, record: str | bytes) -> str:
    """The hash a row with this record must carry."""
    data = record.encode("utf-8") if isinstance(record, str) else record
    return hashlib.sha256(hashed_bytes(seq, prev_hash, chain_version, data)).hexdigest()


def chain_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(last seq, last hash), or (0, GENESIS) for an empty ledger."""
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_event(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``append_events`` for one row; returns the stored row."""
    return append_events(conn, (fields,))[0]


def append_events(
    conn: sqlite3.Connection, events: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The one way a row enters the ledger: append ``events``, in order, inside the caller's
    open transaction. Each holds its columns (no seq/prev_hash/hash), ``event`` an ``Event``;
    JSON-able lists and dicts are stored as canonical JSON text. The chain head is read once
    and the rows are inserted with one statement. Returns the stored rows (their columns,
    ``record`` and ``chain_version`` included).

    Nothing is inserted when an event has an unknown column or an event name not in
    ``snapzen.ledger.evidence.events.Event`` (ValueError)."""
    rows: list[dict[str, Any]] = []
    last_seq, last_hash = -1, ""
    for fields in events:
        unknown = set(fields) - _ACCEPTED
        if unknown:
            raise ValueError(f"unknown ledger columns: {sorted(unknown)}")
        if not rows:
            last_seq, last_hash = chain_head(conn)
        fields = pseudonymize(conn, fields)  # a chat's person: keyed by the chat's period
        content: dict[str, Any] = dict.fromkeys(RECORD_COLUMNS)
        for column, value in fields.items():
            if column in content:
                content[column] = _bound(column, value)
        content["event"] = _event_name(fields.get("event"))
        # Empty columns are left out: json_extract reads a missing key as NULL.
        record = orjson.dumps(
            {KEY_OF.get(col, col): value for col, value in content.items() if value is not None}
        )
        last_seq += 1
        digest = hashlib.sha256(hashed_bytes(last_seq, last_hash, CHAIN_VERSION, record))
        row = {"seq": last_seq, **content, "prev_hash": last_hash, "hash": digest.hexdigest()}
        row["chain_version"] = CHAIN_VERSION
        row["record"] = record.decode("utf-8")
        last_hash = row["hash"]
        rows.append(row)
    if rows:
        stored = conn.executemany(_INSERT_SQL, [[row[c] for c in _STORED] for row in rows])
        if stored.rowcount != len(rows):
            # A trigger planted on the table (RAISE(IGNORE)) can drop a row silently; its
            # seq would then be handed to the next row and the chain would look whole.
            raise FatalError(
                f"the ledger stored {stored.rowcount} of the {len(rows)} rows appended "
                "(a trigger on events?); nothing was recorded: run `snapzen ledger verify`"
            )
    return rows


def _event_name(value: Any) -> str:
    try:
        return Event(value).value
    except ValueError:
        raise ValueError(
            f"unknown ledger event {value!r}: every event is a member of "
            "snapzen.ledger.evidence.events.Event"
        ) from None


def _bound(column: str, value: Any) -> Any:
    """The value as the column reads back from the record: an int for ``ticket_id``, text
    for the rest (lists and dicts as canonical JSON text), or None."""
    if value is None:
        return None
    if column == "ticket_id":
        if isinstance(value, bool) or not isinstance(value, int):
            value = int(value)  # ValueError for a non-integer ticket id
        return value
    if isinstance(value, list | dict):
        return _container_text(value)
    return value if type(value) is str else str(value)


def _container_text(value: list[Any] | dict[Any, Any]) -> str:
    """A list or dict column as canonical JSON text (sorted keys; orjson when equal)."""
    if plain_json(value):
        try:
            return orjson.dumps(value, option=SORTED).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    return json_text(value)


# seq and prev_hash are accepted (and ignored) as before: the chain assigns them.
_ACCEPTED = frozenset({"seq", *RECORD_COLUMNS, "prev_hash"})
_STORED = ("seq", "prev_hash", "hash", "chain_version", "record")
_INSERT_SQL = (
    f"INSERT INTO events ({', '.join(_STORED)}) VALUES ({', '.join('?' for _ in _STORED)})"
)
