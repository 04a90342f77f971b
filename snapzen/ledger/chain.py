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
from collections.abc import Mapping
from typing import Any

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


def canonical_json(row: Mapping[str, Any]) -> str:
    body = {column: row.get(column) for column in CHAINED_COLUMNS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(row: Mapping[str, Any]) -> str:
    prev = str(row["prev_hash"])
    digest = hashlib.sha256()
    digest.update(prev.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_json(row).encode("utf-8"))
    return digest.hexdigest()


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
    unknown = set(fields) - set(CHAINED_COLUMNS)
    if unknown:
        raise ValueError(f"unknown transfer columns: {sorted(unknown)}")
    last_seq, last_hash = chain_head(conn)
    row: dict[str, Any] = {column: None for column in CHAINED_COLUMNS}
    for column, value in fields.items():
        if isinstance(value, list | dict):
            value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        row[column] = value
    row["event"] = row["event"] or "transfer"
    row["seq"] = last_seq + 1
    row["prev_hash"] = last_hash
    row["hash"] = row_hash(row)
    columns = [*CHAINED_COLUMNS, "hash"]
    conn.execute(
        f"INSERT INTO transfers ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [row[c] for c in columns],
    )
    return row
