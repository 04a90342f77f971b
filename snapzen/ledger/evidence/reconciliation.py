"""What `snapzen ledger reconcile` reads from the ledger and how it records that it ran.

The comparison with Zendesk needs, per case: its status, the ticket the ledger names and when
it was synced, and whether snapzen itself deleted that ticket (an ``erased`` or ``expired``
ledger row names it: such a ticket is gone on purpose, not missing). A check is recorded as
a chained ``reconciled`` event, its findings counted in ``details``; `status` and the
metrics read the latest one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store import runs
from snapzen.ledger.store.case_flags import resolve_flag
from snapzen.ledger.store.db import transaction
from snapzen.support import clock

RUN_KIND = "reconcile"  # the word in the check's run id and log lines (`reconcile-…`)


@dataclass(frozen=True)
class LedgerCase:
    case_id: str
    status: str
    ticket_id: int | None
    synced_at: str | None  # ISO UTC, when the ledger recorded the ticket
    deleted: bool = False  # its ticket was deleted by an erasure or the retention sweep
    started_at: str | None = None  # ISO UTC, when the chat started (before its ticket was made)


def ledger_cases(conn: sqlite3.Connection) -> Iterator[LedgerCase]:
    """Every case of the outbox, with what the comparison needs to know about its ticket."""
    rows = conn.execute(
        """SELECT case_id, status, ticket_id, synced_at, EXISTS (SELECT 1 FROM events e
                  WHERE e.ticket_id = c.ticket_id AND e.event IN (?, ?)), started_at
           FROM cases c ORDER BY case_id""",
        (Event.ERASED, Event.EXPIRED),  # snapzen deleted the ticket they name
    )
    for case_id, status, ticket, synced_at, deleted, started_at in rows:
        ticket = int(ticket) if ticket is not None else None
        yield LedgerCase(str(case_id), str(status), ticket, synced_at, bool(deleted), started_at)


def earliest_activity(conn: sqlite3.Connection) -> str | None:
    """The earliest chat start or run start the ledger knows (ISO UTC): every ticket it
    made or adopted changed in Zendesk after that, so an export from there shows them all."""
    row = conn.execute(
        """SELECT MIN(t) FROM (SELECT MIN(started_at) AS t FROM cases
                              UNION ALL SELECT MIN(started_at) FROM runs)"""
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def record_reconciliation(
    db: sqlite_utils.Database,
    run_id: str,
    actor: str,
    at: str,
    *,
    exit_code: int,
    details: Mapping[str, Any],
    resolved: Iterable[tuple[str, str, Mapping[str, Any]]] = (),
) -> None:
    """The check as one chained ``reconciled`` event about the whole ledger: its outcome
    ('ok' when the ledger and Zendesk agree, 'partial' (exit 3) with findings or an
    incomplete read), exit code and counts. An event, not a ``runs`` row: the check changes
    no case, and `status`'s last run stays the last pass. In the same transaction, the flags
    it found settled are closed (``resolved``: case id, kind, how), each chained before it:
    a check killed midway records neither."""
    outcome = {"outcome": runs.ended_outcome(exit_code), "exit_code": exit_code}
    facts = {"run_id": run_id, "actor": actor, "details": {**outcome, **details}}
    with transaction(db) as conn:
        for case_id, kind, how in resolved:
            resolve_flag(
                conn, case_id, kind, clock.parse(at), actor=actor, details=how, run_id=run_id
            )
        append_events(conn, event=Event.RECONCILED, case_id="ledger", recorded_at=at, **facts)


def last_reconciliation(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The latest check: run id, when, outcome, exit code, findings by kind, complete."""
    row = conn.execute(
        "SELECT run_id, recorded_at, details FROM events WHERE event = ? ORDER BY seq DESC LIMIT 1",
        (Event.RECONCILED.value,),
    ).fetchone()
    if row is None:
        return None
    details = json.loads(row[2]) if row[2] else {}
    return {
        "run_id": row[0],
        "finished_at": row[1],
        "outcome": details.get("outcome"),
        "exit_code": details.get("exit_code"),
        "findings": details.get("findings", {}),
        "complete": details.get("complete", True),
    }
