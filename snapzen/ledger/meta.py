"""The ledger's identity: its id, creation time and the fingerprint of its key.

A ledger's subject references are HMACs under ``ledger.key``: opened with another key it
would answer every subject lookup with nothing and key new cases with references no one can
find again. So the file records a fingerprint derived from the key (an HMAC of a fixed label
and the ledger id, never the key itself, and different for every ledger so two ledgers with
one key cannot be matched by it), and every opener compares it.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import uuid
from datetime import datetime

LABEL = b"snapzen ledger key fingerprint v1\x00"


def key_fingerprint(key: bytes, ledger_id: str) -> str:
    return hmac.new(key, LABEL + ledger_id.encode("ascii"), hashlib.sha256).hexdigest()


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """Every ``ledger_meta`` value; empty for a ledger older than the table."""
    try:
        rows = conn.execute("SELECT name, value FROM ledger_meta").fetchall()
    except sqlite3.OperationalError:  # no such table: schema before v6
        return {}
    return {str(name): str(value) for name, value in rows}


def bind(conn: sqlite3.Connection, key: bytes, now: datetime, *, origin: str) -> dict[str, str]:
    """Give the ledger an id, a creation time and its key's fingerprint, where missing.

    ``origin`` says how it got them: ``init`` for a new ledger, ``first-open`` for one
    created before ledgers were bound (bound to the first key that writes to it)."""
    meta = read_meta(conn)
    ledger_id = meta.get("ledger_id") or str(uuid.uuid4())
    wanted = {
        "ledger_id": ledger_id,
        "created_at": meta.get("created_at") or now.isoformat(timespec="seconds"),
        "key_fingerprint": meta.get("key_fingerprint") or key_fingerprint(key, ledger_id),
        "bound_by": meta.get("bound_by") or origin,
    }
    conn.executemany(
        "INSERT OR IGNORE INTO ledger_meta (name, value) VALUES (?, ?)", wanted.items()
    )
    return wanted


def key_matches(meta: dict[str, str], key: bytes) -> bool | None:
    """True/False when the ledger has a fingerprint to compare; None when it has none yet."""
    stored, ledger_id = meta.get("key_fingerprint"), meta.get("ledger_id")
    if not stored or not ledger_id:
        return None
    return hmac.compare_digest(stored, key_fingerprint(key, ledger_id))
