"""Period keys: the chain's reference to a chat's person is keyed by the month the chat started.

A keyed HMAC is still personal data while its key exists (Recital 26): a chain whose
references were all keyed by the ledger key would link every row to its person forever,
since the chain is append-only. So the rows that record a chat (its decision and the
``expired`` event that ends its ticket, ``KEYED_EVENTS``) carry

    chain reference = HMAC-SHA256(K_P, "chain\\n" || lookup reference)

where the lookup reference is ``cases.subject_ref`` (HMAC of the email under the ledger key,
as before) and ``K_P`` is a random 32-byte key of the UTC month ``P`` (``YYYY-MM``) the chat
started in, created on first use. ``subject_periods`` indexes which chain reference belongs
to which lookup reference and period, so a lookup by email finds every period's rows with
one SQL clause (``match``). When the retention sweep forgets a period
(snapzen.ledger.rights.forget) it deletes ``K_P``, the period's ``subject_periods`` rows and its
``cases`` rows in one transaction: the chain keeps its rows and verifies, but nobody, not
even the holder of the ledger key, can link them to a person any more.

Rows recording a person's own requests (``request``, ``access_provided``, ``erased``,
holds...) keep the lookup reference: they are the controller's evidence of answering the
person. References chained before period keys existed (legacy) are their own lookup
reference; they are indexed under their chat's month and forgotten with it (their index rows
and cases are deleted; the ledger key can still recompute them, docs/data-subject-rights.md).

The keys live in the ledger database (0600, written in the same atomic transaction as the
rows they key, carried by every backup); a destroyed key is never brought back by a restore
because the rights journal records every forgotten period (snapzen.ledger.rights.forget.reapply).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from snapzen.ledger.evidence.events import DECISION_NAMES

CREATE_SQL = """
CREATE TABLE IF NOT EXISTS period_keys (
    period TEXT PRIMARY KEY,     -- YYYY-MM: the UTC month of chat start
    key BLOB NOT NULL,           -- 32 random bytes; deleted when the period is forgotten
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_periods (
    chain_ref TEXT NOT NULL,     -- subject_ref as chained (keyed by the period's key)
    lookup_ref TEXT NOT NULL,    -- cases.subject_ref: HMAC of the email under the ledger key
    period TEXT NOT NULL,        -- YYYY-MM
    PRIMARY KEY (chain_ref, period)
);
CREATE INDEX IF NOT EXISTS subject_periods_lookup ON subject_periods(lookup_ref);
CREATE INDEX IF NOT EXISTS subject_periods_period ON subject_periods(period);
"""

# The rows that record a chat, whose reference is keyed by the chat's period.
KEYED_EVENTS: tuple[str, ...] = (*DECISION_NAMES, "expired")
KEYED_SQL = "(" + ", ".join(f"'{name}'" for name in KEYED_EVENTS) + ")"
_LABEL = b"chain\n"
# The case ids whose `cases` rows a forgotten month took (snapzen.ledger.rights.forget), in SQL.
FORGOTTEN_CASES_SQL = (
    "(SELECT j.value FROM events f, json_each(f.details, '$.case_ids') j "
    "WHERE f.event = 'period_forgotten')"
)


def chain_ref(key: bytes, lookup_ref: str) -> str:
    """The reference a chat row of this period carries for this lookup reference."""
    return hmac.new(key, _LABEL + lookup_ref.encode("ascii"), hashlib.sha256).hexdigest()


def has_tables(conn: sqlite3.Connection) -> bool:
    """False for a ledger not yet migrated to period keys (e.g. opened read-only)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subject_periods'"
    ).fetchone()
    return row is not None


def period_of(conn: sqlite3.Connection, case_id: str | None, fallback_at: str | None) -> str:
    """The month a case's chat started (``cases.day``); the event's month without one."""
    if case_id is not None:
        row = conn.execute("SELECT day FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row and row[0]:
            return str(row[0])[:7]
    return str(fallback_at or "")[:7]


def key_for(conn: sqlite3.Connection, period: str, created_at: str) -> bytes:
    """The period's key, created (random) on first use, inside the caller's transaction."""
    row = conn.execute("SELECT key FROM period_keys WHERE period = ?", (period,)).fetchone()
    if row is not None:
        return bytes(row[0])
    key = secrets.token_bytes(32)
    conn.execute(
        "INSERT INTO period_keys (period, key, created_at) VALUES (?, ?, ?)",
        (period, key, created_at),
    )
    return key


def pseudonymize(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields`` of an event about to be chained, its ``subject_ref`` keyed by the chat's
    period when it records a chat (``KEYED_EVENTS``); indexed in ``subject_periods``."""
    ref = fields.get("subject_ref")
    if not ref or (fields.get("event") or "transfer") not in KEYED_EVENTS:
        return fields
    if not has_tables(conn):
        return fields
    at = str(fields.get("recorded_at") or "")
    case_id = fields.get("case_id")
    period = period_of(conn, str(case_id) if case_id is not None else None, at)
    if len(period) != 7:
        return fields
    keyed = chain_ref(key_for(conn, period, at), str(ref))
    conn.execute(
        "INSERT OR IGNORE INTO subject_periods (chain_ref, lookup_ref, period) VALUES (?, ?, ?)",
        (keyed, str(ref), period),
    )
    return {**fields, "subject_ref": keyed}


def match(conn: sqlite3.Connection, lookup_ref: str, *, prefix: str = "") -> tuple[str, list[str]]:
    """An SQL condition on ``transfers`` (``prefix``: its alias and a dot) true for the rows of
    the person with this lookup reference in every period not forgotten, and their own
    request rows; with its parameters."""
    column, event = f"{prefix}subject_ref", f"{prefix}event"
    if not has_tables(conn):
        return f"{column} = ?", [lookup_ref]
    return (
        f"({column} IN (SELECT chain_ref FROM subject_periods WHERE lookup_ref = ?)"
        f" OR ({column} = ? AND {event} NOT IN {KEYED_SQL}))",
        [lookup_ref, lookup_ref],
    )


def lookup_of(conn: sqlite3.Connection, ref: str) -> str | None:
    """The lookup reference behind a reference read from the chain: itself when it is not a
    month-keyed chat reference; None when its month was forgotten."""
    if not has_tables(conn):
        return ref
    row = conn.execute(
        "SELECT lookup_ref FROM subject_periods WHERE chain_ref = ? LIMIT 1", (ref,)
    ).fetchone()
    if row is not None:
        return str(row[0])
    keyed = conn.execute(
        f"SELECT 1 FROM events WHERE subject_ref = ? AND event IN {KEYED_SQL} LIMIT 1", (ref,)
    ).fetchone()
    return None if keyed is not None else ref


def index_legacy(conn: sqlite3.Connection) -> int:
    """Index the chat rows chained before period keys (their reference is the lookup
    reference itself) under their chat's month; returns the index rows added."""
    cursor = conn.execute(
        f"""INSERT OR IGNORE INTO subject_periods (chain_ref, lookup_ref, period)
            SELECT DISTINCT t.subject_ref, t.subject_ref,
                   COALESCE(substr(c.day, 1, 7), substr(t.recorded_at, 1, 7))
            FROM events t LEFT JOIN cases c ON c.case_id = t.case_id
            WHERE t.subject_ref IS NOT NULL AND t.event IN {KEYED_SQL}"""
    )
    return cursor.rowcount
