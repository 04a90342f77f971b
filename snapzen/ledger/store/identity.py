"""The ledger's identity: its id, creation time and the fingerprint of its key.

A ledger's subject references are HMACs under ``ledger.key``: opened with another key it
would answer every subject lookup with nothing and key new cases with references no one can
find again. So the file records a fingerprint derived from the key (an HMAC of a fixed label
and the ledger id, never the key itself, and different for every ledger so two ledgers with
one key cannot be matched by it), and every opener compares it.

The binding is also a chained ``ledger_bound`` event (id, fingerprint, how it was bound), and
the chain is what counts: a ``ledger_meta`` row deleted or edited (so that a restore of
another key's backup would bind it anew) changes nothing, and ``verify`` names the table.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import uuid
from datetime import datetime

import orjson

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.rows import rows_if_any
from snapzen.support import clock

BOUND = ("ledger_id", "key_fingerprint")  # what the chained binding decides
LABEL = b"snapzen ledger key fingerprint v1\x00"


def key_fingerprint(key: bytes, ledger_id: str) -> str:
    return hmac.new(key, LABEL + ledger_id.encode("ascii"), hashlib.sha256).hexdigest()


def read_table(conn: sqlite3.Connection) -> dict[str, str]:
    """Every ``ledger_meta`` row as stored; empty for a ledger older than the table."""
    rows = rows_if_any(conn, "SELECT name, value FROM ledger_meta")  # none before schema 6
    return {str(name): str(value) for name, value in rows}


def chained_binding(conn: sqlite3.Connection) -> tuple[int, dict[str, str]] | None:
    """(seq, details) of the latest ``ledger_bound`` event; None when the chain has none."""
    try:
        row = conn.execute(
            "SELECT seq, details FROM events WHERE event = ? ORDER BY seq DESC LIMIT 1",
            (Event.LEDGER_BOUND,),
        ).fetchone()
    except sqlite3.OperationalError:  # not a ledger at all
        return None
    if row is None:
        return None
    details = orjson.loads(row[1]) if row[1] else {}
    return int(row[0]), {str(k): str(v) for k, v in details.items()}


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The ledger's identity: ``ledger_meta``, with the id and key fingerprint the chain
    recorded taking precedence over the table's (which anyone can edit)."""
    meta = read_table(conn)
    chained = chained_binding(conn)
    if chained is not None:
        meta.update({name: chained[1][name] for name in BOUND if chained[1].get(name)})
    return meta


def chain_binding(conn: sqlite3.Connection, now: datetime, origin: str) -> bool:
    """Inside the caller's transaction: append the ``ledger_bound`` event when the chain
    lacks one and the table holds a binding (a ledger bound before bindings were chained).
    True when an event was appended."""
    if chained_binding(conn) is not None:
        return False
    table = read_table(conn)
    if not all(table.get(name) for name in BOUND):
        return False
    details = {name: table[name] for name in BOUND} | {"bound_by": table.get("bound_by", origin)}
    stamp = clock.format(now)
    append_events(
        conn,
        event=Event.LEDGER_BOUND,
        case_id="ledger",
        recorded_at=stamp,
        actor=origin,
        details=details,
    )
    return True


def bind(conn: sqlite3.Connection, key: bytes, now: datetime, *, origin: str) -> dict[str, str]:
    """Give the ledger an id, a creation time and its key's fingerprint, where missing.

    ``origin`` says how it got them: ``init`` for a new ledger, ``first-open`` for one
    created before ledgers were bound (bound to the first key that writes to it)."""
    meta = read_meta(conn)
    ledger_id = meta.get("ledger_id") or str(uuid.uuid4())
    wanted = {
        "ledger_id": ledger_id,
        "created_at": meta.get("created_at") or clock.format(now),
        "key_fingerprint": meta.get("key_fingerprint") or key_fingerprint(key, ledger_id),
        "bound_by": meta.get("bound_by") or origin,
    }
    conn.executemany(
        "INSERT OR IGNORE INTO ledger_meta (name, value) VALUES (?, ?)", wanted.items()
    )
    chain_binding(conn, now, origin)
    return wanted


def key_matches(meta: dict[str, str], key: bytes) -> bool | None:
    """True/False when the ledger has a fingerprint to compare; None when it has none yet."""
    stored, ledger_id = meta.get("key_fingerprint"), meta.get("ledger_id")
    if not stored or not ledger_id:
        return None
    return hmac.compare_digest(stored, key_fingerprint(key, ledger_id))
