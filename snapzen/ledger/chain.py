"""The transfer ledger's hash chain: canonical row hashing and appending.

hash = SHA-256( prev_hash || "\\n" || canonical JSON of the row without ``hash`` )
where the canonical JSON has sorted keys, no spaces, UTF-8 (``ensure_ascii=False``) and
includes ``seq`` and ``prev_hash``, so reordering, insertion, deletion or edits all break it.
The first row's prev_hash is GENESIS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

GENESIS = "0" * 64

# Columns of `transfers` that the hash covers, in schema order (all but `hash`).
CHAINED_COLUMNS = (
    "seq",
    "event",
    "case_id",
    "widget_id",
    "subject_ref",
    "origin_country",
    "recipient",
    "destination_country",
    "legal_basis",
    "mechanism_ref",
    "consent_variable",
    "consent_value",
    "consent_source",
    "consent_observed_at",
    "data_categories",
    "redactions",
    "ticket_id",
    "transferred_at",
    "retention_until",
    "run_id",
    "actor",
    "details",
    "prev_hash",
)


# The hash's canonical form is ``_json_text`` below, and it must never change. orjson writes
# the very same bytes, ~5x faster, for str, int, bool, None, and lists and str-keyed dicts of
# those (``plain_json``; property test in tests/test_outbox_batching.py). It refuses ints
# beyond 64 bits and lone surrogates (JSONEncodeError), formats floats differently and
# encodes types json refuses (UUID, Enum, dates, dataclasses): all of those take ``json``.
_SCALARS = frozenset({str, int, bool, type(None)})
_SORTED = orjson.OPT_SORT_KEYS


def plain_json(value: Any) -> bool:
    """True when ``value`` holds only str, int, bool and None, in lists and str-keyed dicts
    (exact types, no subclasses): the values orjson encodes exactly as ``json`` does (bar
    ints beyond 64 bits and lone surrogates, which orjson refuses). An explicit stack, not
    recursion: it runs once per ledger row and per pushed case."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        kind = type(current)
        if kind is dict:
            for key in current:
                if type(key) is not str:
                    return False
            items = current.values()
        elif kind is list:
            items = current
        else:
            if kind is str or kind is int or current is None or kind is bool:
                continue
            return False
        for item in items:
            kind = type(item)
            if kind is str or kind is int or item is None or kind is bool:
                continue
            if kind is dict or kind is list:
                push(item)
                continue
            return False
    return True


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(row: Mapping[str, Any]) -> str:
    body = {column: row.get(column) for column in CHAINED_COLUMNS}
    fast = _orjson_scalars(body)
    return fast.decode("utf-8") if fast is not None else _json_text(body)


def row_hash(row: Mapping[str, Any]) -> str:
    prev = str(row["prev_hash"])
    body = {column: row.get(column) for column in CHAINED_COLUMNS}
    canonical = _orjson_scalars(body)
    digest = hashlib.sha256()
    digest.update(prev.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical if canonical is not None else _json_text(body).encode("utf-8"))
    return digest.hexdigest()


def _orjson_scalars(body: dict[str, Any]) -> bytes | None:
    """``_json_text(body)`` as UTF-8 via orjson, or None where it could differ."""
    if _SCALARS.issuperset(map(type, body.values())):
        try:
            return orjson.dumps(body, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # an int beyond 64 bits or a lone surrogate: json decides
    return None


def subject_ref(key: bytes, email: str | None) -> str | None:
    """Pseudonymous subject key: HMAC-SHA256 of the lower-cased, trimmed email."""
    if not email or not email.strip():
        return None
    return hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def chain_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(last seq, last hash), or (0, GENESIS) for an empty ledger."""
    row = conn.execute("SELECT seq, hash FROM transfers ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_event(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Append one row inside the caller's open transaction; returns the stored row.

    ``fields`` holds the event's columns (no seq/prev_hash/hash). JSON-able lists and dicts
    are stored as canonical JSON text so the hash is stable.
    """
    return append_events(conn, (fields,))[0]


def append_events(
    conn: sqlite3.Connection, events: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Append several rows, in order, inside the caller's open transaction: the same rows
    (seq, prev_hash, hash) as ``append_event`` called once per event, but the chain head is
    read once and the rows are inserted with one statement. Returns the stored rows.

    Nothing is inserted when an event has an unknown column (ValueError)."""
    rows: list[dict[str, Any]] = []
    last_seq, last_hash = -1, ""
    for fields in events:
        unknown = set(fields) - _CHAINED_SET
        if unknown:
            raise ValueError(f"unknown transfer columns: {sorted(unknown)}")
        if not rows:
            last_seq, last_hash = chain_head(conn)
        row: dict[str, Any] = dict.fromkeys(CHAINED_COLUMNS)
        for column, value in fields.items():
            if isinstance(value, list | dict):
                value = _container_text(value)
            row[column] = value
        row["event"] = row["event"] or "transfer"
        last_seq += 1
        row["seq"] = last_seq
        row["prev_hash"] = last_hash
        row["hash"] = last_hash = row_hash(row)
        rows.append(row)
    if rows:
        conn.executemany(_INSERT_SQL, [[row[c] for c in _STORED_COLUMNS] for row in rows])
    return rows


def _container_text(value: list[Any] | dict[Any, Any]) -> str:
    """A list or dict column as canonical JSON text (``_json_text``; orjson when equal)."""
    if plain_json(value):
        try:
            return orjson.dumps(value, option=_SORTED).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    return _json_text(value)


_CHAINED_SET = frozenset(CHAINED_COLUMNS)
_STORED_COLUMNS = (*CHAINED_COLUMNS, "hash")
_INSERT_SQL = (
    f"INSERT INTO transfers ({', '.join(_STORED_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _STORED_COLUMNS)})"
)
