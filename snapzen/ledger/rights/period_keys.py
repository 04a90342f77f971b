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

Rows recording a person's own requests and what was done (``request`` and its clock
events, ``access_provided``, ``erased``, holds, Art. 19 notices: ``EVIDENCE_EVENTS``) are
keyed the same way by a *request period*, ``req-YYYY-MM``, the UTC month the row was
recorded: they are the controller's evidence of answering the person, kept for
``record.request_evidence_years`` after the last request of the period was closed and then
forgotten like a month of chats (snapzen.ledger.rights.request_periods). A subject hold's
target (``subject:<ref>``) carries the keyed reference too. Readers turn a chained reference
back into its lookup reference with ``Resolver`` (None once its period was forgotten).

References chained before period keys existed (legacy) are their own lookup reference; they
are indexed under their period and forgotten with it (their index rows and cases are
deleted; the ledger key can still recompute them: ``legacy_rows``, docs/data-subject-rights.md).

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

from snapzen.ledger.evidence.events import DECISION_NAMES, Event, sql_list

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
CHAT_EVENTS: tuple[str, ...] = (*DECISION_NAMES, str(Event.EXPIRED))
HOLD_EVENTS: tuple[str, ...] = (Event.HOLD_ADDED, Event.HOLD_REMOVED)
# The rows that record a person's requests (each with its clock's events) and what was done,
# keyed by the request period.
EVIDENCE_EVENTS: tuple[str, ...] = (
    *(Event.REQUEST, Event.REQUEST_PAUSED, Event.REQUEST_RESUMED, Event.REQUEST_EXTENDED),
    *(Event.ACCESS_PROVIDED, Event.ERASED, *HOLD_EVENTS, Event.RECIPIENT_NOTICE),
)
# Every row whose reference is keyed by a period (a lookup never matches it directly).
KEYED_EVENTS: tuple[str, ...] = (*CHAT_EVENTS, *EVIDENCE_EVENTS)
KEYED_SQL = sql_list(KEYED_EVENTS)
CHAT_SQL = sql_list(CHAT_EVENTS)
EVIDENCE_SQL = sql_list(EVIDENCE_EVENTS)
HOLDS_SQL = sql_list(HOLD_EVENTS)
REQUEST_PREFIX = "req-"  # a request period: req-YYYY-MM
_LABEL = b"chain\n"
# The case ids whose `cases` rows a forgotten month took (snapzen.ledger.rights.forget), in SQL.
FORGOTTEN_CASES_SQL = (
    "(SELECT j.value FROM events f, json_each(f.details, '$.case_ids') j "
    f"WHERE f.event = '{Event.PERIOD_FORGOTTEN.value}')"
)

# The request ids whose evidence a forgotten request period took, in SQL.
FORGOTTEN_REQUESTS_SQL = (
    "SELECT j.value FROM events f, json_each(f.details, '$.request_ids') j "
    f"WHERE f.event = '{Event.PERIOD_FORGOTTEN.value}'"
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


def held(conn: sqlite3.Connection) -> list[str]:
    """Every period, month or request period, the ledger still holds something of (cases, a
    key, index rows), oldest first."""
    if not has_tables(conn):
        return []
    rows = conn.execute(
        """SELECT substr(day, 1, 7) FROM cases WHERE day IS NOT NULL
           UNION SELECT period FROM period_keys UNION SELECT period FROM subject_periods"""
    ).fetchall()
    return sorted(str(r[0]) for r in rows if r[0] and len(str(r[0]).removeprefix("req-")) == 7)


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


def request_period(recorded_at: str) -> str:
    """The request period of an evidence row: ``req-`` and the UTC month it was recorded."""
    return REQUEST_PREFIX + recorded_at[:7]


def is_request_period(period: str) -> bool:
    return period.startswith(REQUEST_PREFIX)


def pseudonymize(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields`` of an event about to be chained, its ``subject_ref`` keyed by the chat's
    period when it records a chat (``CHAT_EVENTS``), by its request period when it is
    evidence of a request (``EVIDENCE_EVENTS``); indexed in ``subject_periods``."""
    ref = fields.get("subject_ref")
    event = str(fields.get("event") or "transfer")
    if not ref or event not in KEYED_EVENTS or not has_tables(conn):
        return fields
    at = str(fields.get("recorded_at") or "")
    if event in EVIDENCE_EVENTS:
        if _keyed_events(conn) == CHAT_EVENTS:
            return fields  # schema 10, being migrated: the legacy scheme until schema 11
        period = request_period(at)
    else:
        case_id = fields.get("case_id")
        period = period_of(conn, str(case_id) if case_id is not None else None, at)
    if len(period.removeprefix(REQUEST_PREFIX)) != 7:
        return fields
    keyed = chain_ref(key_for(conn, period, at), str(ref))
    conn.execute(
        "INSERT OR IGNORE INTO subject_periods (chain_ref, lookup_ref, period) VALUES (?, ?, ?)",
        (keyed, str(ref), period),
    )
    keyed_fields = {**fields, "subject_ref": keyed}
    details = fields.get("details")
    named = isinstance(details, Mapping) and details.get("target") == f"subject:{ref}"
    if named and event in HOLD_EVENTS and isinstance(details, Mapping):  # a subject hold
        keyed_fields["details"] = {**details, "target": f"subject:{keyed}"}
    return keyed_fields


def match(conn: sqlite3.Connection, lookup_ref: str, *, prefix: str = "") -> tuple[str, list[str]]:
    """An SQL condition on ``transfers`` (``prefix``: its alias and a dot) true for the rows of
    the person with this lookup reference in every period not forgotten, and their own
    request rows; with its parameters."""
    column, event = f"{prefix}subject_ref", f"{prefix}event"
    if not has_tables(conn):
        return f"{column} = ?", [lookup_ref]
    return (
        f"({column} IN (SELECT chain_ref FROM subject_periods WHERE lookup_ref = ?)"
        f" OR ({column} = ? AND {event} NOT IN {_keyed_sql(conn)}))",
        [lookup_ref, lookup_ref],
    )


def lookup_of(conn: sqlite3.Connection, ref: str) -> str | None:
    """The lookup reference behind a reference read from the chain: itself when it is not a
    period-keyed reference; None when its period was forgotten."""
    keyed = None
    if has_tables(conn):
        keyed = conn.execute(
            f"SELECT event FROM events WHERE subject_ref = ? AND event IN {_keyed_sql(conn)} "
            "LIMIT 1",
            (ref,),
        ).fetchone()
    return Resolver(conn).resolve(ref, str(keyed[0]) if keyed else "")


class Resolver:
    """``lookup_of`` for many rows, one indexed query per distinct reference (cached).
    ``resolve(ref, event)``: the lookup reference of a row's chained reference; None when
    its period was forgotten."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.indexed = has_tables(conn)
        self.keyed = _keyed_events(conn) if self.indexed else ()
        self.lookup: dict[str, str | None] = {}

    def resolve(self, ref: str | None, event: str) -> str | None:
        if ref is None or not self.indexed:
            return ref
        if ref not in self.lookup:
            row = self.conn.execute(
                "SELECT lookup_ref FROM subject_periods WHERE chain_ref = ? LIMIT 1", (ref,)
            ).fetchone()
            self.lookup[ref] = str(row[0]) if row is not None else None
        found = self.lookup[ref]
        if found is not None:
            return found
        return None if event in self.keyed else ref


def _keyed_events(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The events keyed by period in this ledger: chats only before schema 11 (a ledger
    opened read-only, not migrated, whose evidence rows are not indexed yet)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'legacy_refs'"
    ).fetchone()
    return KEYED_EVENTS if row is not None else CHAT_EVENTS


def _keyed_sql(conn: sqlite3.Connection) -> str:
    return sql_list(_keyed_events(conn))


def index_legacy(conn: sqlite3.Connection) -> int:
    """Index the chat rows chained before period keys (their reference is the lookup
    reference itself) under their chat's month; returns the index rows added."""
    cursor = conn.execute(
        f"""INSERT OR IGNORE INTO subject_periods (chain_ref, lookup_ref, period)
            SELECT DISTINCT t.subject_ref, t.subject_ref,
                   COALESCE(substr(c.day, 1, 7), substr(t.recorded_at, 1, 7))
            FROM events t LEFT JOIN cases c ON c.case_id = t.case_id
            WHERE t.subject_ref IS NOT NULL AND t.event IN {CHAT_SQL}"""
    )
    return cursor.rowcount


def index_legacy_evidence(conn: sqlite3.Connection) -> int:
    """Index the request evidence rows chained before request periods (their reference is
    the lookup reference itself) under their request period, and mark where the legacy
    rows end (``legacy_refs``, for ``legacy_rows``); returns the index rows added."""
    conn.execute(LEGACY_SQL)
    cursor = conn.execute(
        f"""INSERT OR IGNORE INTO subject_periods (chain_ref, lookup_ref, period)
            SELECT DISTINCT subject_ref, subject_ref,
                   '{REQUEST_PREFIX}' || substr(recorded_at, 1, 7)
            FROM events WHERE subject_ref IS NOT NULL AND event IN {EVIDENCE_SQL}"""
    )
    added = cursor.rowcount
    last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    # Chat rows: legacy up to the first one keyed by a month key (none yet: all so far).
    first_keyed = conn.execute(
        f"""SELECT MIN(e.seq) FROM events e JOIN subject_periods p ON p.chain_ref = e.subject_ref
            WHERE p.chain_ref != p.lookup_ref AND e.event IN {CHAT_SQL}"""
    ).fetchone()[0]
    chats = int(first_keyed) - 1 if first_keyed is not None else int(last)
    conn.executemany(
        "INSERT OR IGNORE INTO legacy_refs (kind, last_seq) VALUES (?, ?)",
        [("chats", chats), ("requests", int(last))],
    )
    return added


LEGACY_SQL = """
CREATE TABLE IF NOT EXISTS legacy_refs (
    kind TEXT PRIMARY KEY,       -- chats | requests
    last_seq INTEGER NOT NULL    -- rows of that kind up to this seq carry the lookup reference
);
"""


def legacy_rows(conn: sqlite3.Connection) -> tuple[int, str | None, str | None]:
    """(rows, first day, last day) of the chain rows whose reference is the lookup reference
    itself (chained before period keys): whoever holds ``ledger.key`` and an email can
    recompute it, whatever was forgotten since (docs/data-subject-rights.md)."""
    try:
        bounds = dict(conn.execute("SELECT kind, last_seq FROM legacy_refs").fetchall())
    except sqlite3.Error:
        return 0, None, None
    row = conn.execute(
        f"""SELECT COUNT(*), MIN(recorded_at), MAX(recorded_at) FROM events
            WHERE subject_ref IS NOT NULL AND (
                (event IN {CHAT_SQL} AND seq <= ?) OR (event IN {EVIDENCE_SQL} AND seq <= ?))""",
        (int(bounds.get("chats", 0)), int(bounds.get("requests", 0))),
    ).fetchone()
    count = int(row[0] or 0)
    return count, (str(row[1])[:10] if count else None), (str(row[2])[:10] if count else None)
