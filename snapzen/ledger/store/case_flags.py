"""Cases flagged for a human: what snapzen found but must not decide alone.

Zendesk does not keep ``external_id`` unique, so a case can have several tickets (a ticket
created by hand, another tool, a ledger lost before it recorded its first copy). Picking one
would orphan the others (erasure and retention would never delete them) and deleting any
would destroy data on a guess: the case is flagged, ``status`` shows it, and nothing is
deleted until a person decides.

A flag is closed (``resolved_at``) only with a chained ``case_flag_resolved`` event in the
same transaction: when `ledger reconcile` sees Zendesk agree with the ledger again, or when
a person records their decision (`ledger flags resolve`). Raised again, it opens anew
(chained as ``case_flagged``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.db import transaction
from snapzen.ledger.store.rows import dict_rows
from snapzen.support import clock

DUPLICATE_TICKETS = "duplicate_tickets"
TICKET_MISMATCH = "ticket_mismatch"  # the ledger names a ticket Zendesk has not got
TICKET_FOR_WITHHELD = "ticket_for_withheld"  # a ticket exists for a case the ledger withheld


def flag_case(
    conn: sqlite3.Connection,
    case_id: str,
    kind: str,
    ticket_ids: Iterable[int],
    now: datetime,
    *,
    source: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Open (or refresh) the flag inside the caller's transaction; one per case and kind.
    A new flag, or one naming other tickets, is chained (``case_flagged``)."""
    flag = {"case_id": case_id, "kind": kind, "tickets": json.dumps(sorted(set(ticket_ids)))}
    flag |= {"source": source, "stamp": clock.format(now)}
    before = conn.execute(
        "SELECT ticket_ids, resolved_at FROM case_flags WHERE case_id = :case_id AND kind = :kind",
        flag,
    ).fetchone()
    if before != (flag["tickets"], None):  # a new flag, other tickets, or reopened
        chained = {"kind": kind, "ticket_ids": json.loads(flag["tickets"]), "source": source}
        facts = {"recorded_at": flag["stamp"], "actor": source, "details": chained}
        append_events(conn, event=Event.CASE_FLAGGED, case_id=case_id, **facts)
    conn.execute(
        """INSERT INTO case_flags (case_id, kind, ticket_ids, source, details, flagged_at)
           VALUES (:case_id, :kind, :tickets, :source, :details, :stamp)
           ON CONFLICT (case_id, kind) DO UPDATE SET ticket_ids = excluded.ticket_ids,
               source = excluded.source, details = excluded.details,
               flagged_at = excluded.flagged_at, resolved_at = NULL""",
        flag | {"details": json.dumps(dict(details or {}), sort_keys=True)},
    )


def flag_duplicates(
    db: sqlite_utils.Database, case_id: str, ticket_ids: Iterable[int], now: datetime, source: str
) -> None:
    """``flag_case`` for several tickets with one external id, in its own transaction."""
    with transaction(db) as conn:
        flag_case(conn, case_id, DUPLICATE_TICKETS, ticket_ids, now, source=source)


def resolve_flag(
    conn: sqlite3.Connection,
    case_id: str,
    kind: str,
    now: datetime,
    *,
    actor: str,
    details: Mapping[str, Any],
    run_id: str | None = None,
) -> int | None:
    """Close the open flag inside the caller's transaction, chained as ``case_flag_resolved``
    (``details``: how it was settled, with the flag's kind and tickets); the event's seq,
    None when the case has no open flag of that kind (nothing written)."""
    flag = find_flag(conn, case_id, kind)
    if flag is None or flag["resolved_at"] is not None:
        return None
    stamp = clock.format(now)
    chained = {"kind": kind, "ticket_ids": flag["ticket_ids"], **details}
    facts = {"recorded_at": stamp, "actor": actor, "run_id": run_id, "details": chained}
    [row] = append_events(conn, event=Event.CASE_FLAG_RESOLVED, case_id=case_id, **facts)
    conn.execute(
        "UPDATE case_flags SET resolved_at = ? WHERE case_id = ? AND kind = ?",
        (stamp, case_id, kind),
    )
    return int(row["seq"])


def find_flag(conn: sqlite3.Connection, case_id: str, kind: str) -> dict[str, Any] | None:
    """One flag, open or resolved (None: never raised)."""
    found = _flags(conn, "WHERE case_id = ? AND kind = ?", [case_id, kind])
    return found[0] if found else None


def open_flags(db: sqlite_utils.Database, limit: int = 1000) -> list[dict[str, Any]]:
    """Unresolved flags, oldest first (empty for a ledger older than the table); ``limit``
    -1: all of them."""
    try:
        where = "WHERE resolved_at IS NULL ORDER BY flagged_at, case_id, kind LIMIT ?"
        return _flags(db.conn, where, [limit])
    except sqlite3.OperationalError:  # no such table (a read-only open of an old ledger)
        return []


def _flags(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    flags = dict_rows(
        conn,
        "SELECT case_id, kind, ticket_ids, source, details, flagged_at, resolved_at "
        f"FROM case_flags {where}",
        params,
    )
    return [
        {
            **flag,
            "ticket_ids": json.loads(flag["ticket_ids"] or "[]"),
            "details": json.loads(flag["details"] or "{}"),
        }
        for flag in flags
    ]
