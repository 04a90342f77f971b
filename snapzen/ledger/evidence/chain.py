"""The ledger's hash chain: appending rows, and the bytes each row's hash covers, in every
version a ledger was ever written in (so every ledger ever written stays verifiable).

Version 3 (written now, schema 8 on): each row stores ``record``, the JSON object of its
non-empty content columns (``RECORD_COLUMNS``, in that order, each under its record key:
``recorded_at`` under ``transferred_at``, its name before schema 9; the table's columns are
generated from it, see ledger.evidence.events_table), and

    hash = SHA-256( prev_hash || "\\n" || seq in decimal || "\\n" || record )

so an auditor recomputes any row with the ``sqlite3`` shell and ``sha256sum`` alone
(``V3_HASHED_SQL``), and verification hashes stored bytes without rebuilding them.

Versions 1 and 2 hashed ``prev_hash || "\\n" || record`` with ``seq`` and ``prev_hash``
inside the record (since schema 8 that JSON is the row's stored ``record`` too):

- version 1 (``chain_version`` NULL): the record is the canonical JSON of the row's
  ``CHAINED_COLUMNS`` (sorted keys, no spaces, UTF-8, ``ensure_ascii=False``);
- version 2: the record is SQLite's ``json_object`` over ``V2_COLUMNS`` in that order.

Every version covers ``seq`` and ``prev_hash``, so reordering, insertion, deletion or edits
all break the chain. The first row's prev_hash is GENESIS.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from snapzen.ledger.evidence.events import CHAINED_COLUMNS, KEY_OF, RECORD_COLUMNS, Event
from snapzen.ledger.rights.period_keys import pseudonymize
from snapzen.ledger.rights.subjects import subject_ref as subject_ref  # re-exported: older callers
from snapzen.support.errors import FatalError

GENESIS = "0" * 64
CHAIN_VERSION = 3


# Version 2: SQLite's json_object over these columns, in this order.
V2_COLUMNS = (*CHAINED_COLUMNS[:-1], "chain_version", "prev_hash")
V2_BODY_SQL = "json_object(" + ", ".join(f"'{c}', {c}" for c in V2_COLUMNS) + ")"
# The exact bytes a version-3 row's hash covers, in SQL (for an auditor's sqlite3 shell).
V3_HASHED_SQL = "CAST(prev_hash || char(10) || seq || char(10) || record AS BLOB)"


def plain_json(value: Any) -> bool:
    """True when ``value`` holds only str, int, bool and None, in lists and str-keyed dicts
    (exact types, no subclasses): the values orjson encodes exactly as ``json`` does (bar
    ints beyond 64 bits and lone surrogates, which orjson refuses). An explicit stack, not
    recursion: it runs once per ledger row and per pushed case."""
    stack = [value]
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind is dict:
            if any(type(key) is not str for key in current):
                return False
            stack.extend(current.values())
        elif kind is list:
            stack.extend(current)
        elif not (kind is str or kind is int or current is None or kind is bool):
            return False
    return True


def json_text(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """Canonical JSON text (sorted keys, no spaces, UTF-8): version 1's form, which must never
    change. orjson writes the very same bytes, ~5x faster, for ``plain_json`` values (property
    test in tests/unit/ledger/store/test_outbox_batching.py); it refuses ints beyond 64 bits
    and lone surrogates, and the rest (floats, UUID, dates...) takes ``json`` as before."""
    if plain_json(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default
    )


def canonical_json(row: Mapping[str, Any]) -> str:
    """A version-1 row's hashed JSON (its record since schema 8)."""
    return json_text({column: row.get(column) for column in CHAINED_COLUMNS})


def hashed_bytes(seq: int, prev_hash: str, chain_version: int | None, record: bytes) -> bytes:
    """What the hash of a row with this record covers, for every version."""
    if chain_version == CHAIN_VERSION:
        return b"%s\n%d\n%s" % (prev_hash.encode("ascii"), seq, record)
    return b"%s\n%s" % (prev_hash.encode("ascii"), record)


def row_digest(seq: int, prev_hash: str, chain_version: int | None, record: str | bytes) -> str:
    """The hash a row with this record must carry."""
    data = record.encode("utf-8") if isinstance(record, str) else record
    return hashlib.sha256(hashed_bytes(seq, prev_hash, chain_version, data)).hexdigest()


def row_hash(row: Mapping[str, Any]) -> str:
    """The version-1 hash of ``row`` (its CHAINED_COLUMNS)."""
    return row_digest(0, str(row["prev_hash"]), None, canonical_json(row))  # seq: in the JSON


def chain_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(last seq, last hash), or (0, GENESIS) for an empty ledger."""
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_events(
    conn: sqlite3.Connection, events: Iterable[Mapping[str, Any]] = (), /, **event: Any
) -> list[dict[str, Any]]:
    """The one way a row enters the ledger: append ``events``, in order, inside the caller's
    open transaction, or, in the keyword form, the one event given as columns
    (``append_events(conn, event=Event.RUN, case_id=..., recorded_at=stamp, details=...)``).
    Each holds its columns (no seq/prev_hash/hash), ``event`` an ``Event``; JSON-able lists
    and dicts are stored as canonical JSON text. The chain head is read once and the rows are
    inserted with one statement. Returns the stored rows (their columns, ``record`` and
    ``chain_version`` included).

    Nothing is inserted when an event has an unknown column or an event name not in
    ``snapzen.ledger.evidence.events.Event`` (ValueError)."""
    if event:
        if events != ():
            raise TypeError("append_events: rows or one event's columns, not both")
        events = (event,)
    rows: list[dict[str, Any]] = []
    last_seq, last_hash = -1, ""
    for fields in events:
        unknown = set(fields) - _ACCEPTED
        if unknown:
            raise ValueError(f"unknown ledger columns: {sorted(unknown)}")
        if not rows:
            last_seq, last_hash = chain_head(conn)
        lookup_ref = fields.get("subject_ref")
        fields = pseudonymize(conn, fields)  # a person: keyed by the chat's/request's period
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
        digest = row_digest(last_seq, last_hash, CHAIN_VERSION, record)
        rows.append(
            {"seq": last_seq, **content, "prev_hash": last_hash, "hash": digest}
            | {"chain_version": CHAIN_VERSION, "record": record.decode("utf-8")}
            | {"lookup_ref": lookup_ref}  # not stored: for the rights journal (a restore)
        )
        last_hash = digest
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
        return value if type(value) is int else int(value)  # ValueError: not a ticket id
    if isinstance(value, list | dict):
        return json_text(value)
    return value if type(value) is str else str(value)


# seq and prev_hash are accepted (and ignored) as before: the chain assigns them.
_ACCEPTED = frozenset({"seq", *RECORD_COLUMNS, "prev_hash"})
_STORED = ("seq", "prev_hash", "hash", "chain_version", "record")
_INSERT_SQL = f"INSERT INTO events ({', '.join(_STORED)}) VALUES (?, ?, ?, ?, ?)"
