"""Recording what Zendesk already holds: adoption (`init --adopt`) and restore reconciliation.

Zendesk is the record that outlives the ledger file. When a ledger is new, lost or restored
from a backup, the `snapengage:` tickets found in Zendesk are written here as synced cases so
no sync creates them again. Each one appends an ``adopted`` event: the evidence of the
original transfer (consent, legal basis at the time) is not in this ledger, and the chain
says so instead of inventing a transfer row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.case_flags import (
    DUPLICATE_TICKETS,
    TICKET_FOR_WITHHELD,
    TICKET_MISMATCH,
    flag_case,
)
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import transaction
from snapzen.ledger.store.rows import chunks
from snapzen.support import clock

ADOPTED_WIDGET = "(adopted)"  # the ticket does not say which widget the chat came from
_KEPT_TAG_PREFIXES = ("gdpr_", "expires_")
_KNOWN = "case_id, status, ticket_id, widget_id"  # what the ledger knows of a case


@dataclass(frozen=True)
class FoundTicket:
    """A live Zendesk ticket whose external_id is ``snapengage:<case id>``."""

    ticket_id: int
    created_at: str | None
    tags: tuple[str, ...] = ()
    # Who the ticket is about, as HMAC references under the ledger key (never the email or
    # the name): from the replaced ledger's own case, or from the ticket's requester email
    # and the name in its subject. None when neither says (no valid email).
    subject_ref: str | None = None
    name_ref: str | None = None


@dataclass
class AdoptCounts:
    adopted: int = 0  # cases recorded as synced from Zendesk
    already: int = 0  # the ledger already had the case synced with that ticket
    flagged: list[str] = field(default_factory=list)  # case ids flagged for a human

    def as_dict(self) -> dict[str, Any]:
        return {"adopted": self.adopted, "already": self.already, "flagged": len(self.flagged)}


def record_adoptions(
    db: sqlite_utils.Database,
    found: Mapping[str, Sequence[FoundTicket]],
    now: datetime,
    *,
    source: str,
    actor: str,
    run_id: str,
) -> AdoptCounts:
    """Write ``found`` (case id -> its live tickets) into the ledger in one transaction."""
    counts = AdoptCounts()
    facts = {"recorded_at": clock.format(now), "run_id": run_id, "actor": actor}
    with transaction(db) as conn:
        for chunk, marks in chunks(sorted(found)):
            sql = f"SELECT {_KNOWN} FROM cases WHERE case_id IN ({marks})"
            rows = {row[0]: row[1:] for row in conn.execute(sql, chunk)}
            events = [
                {**event, **facts}
                for case_id in chunk
                if (
                    event := _adopt_one(
                        conn, case_id, found[case_id], rows.get(case_id), now, source, counts
                    )
                )
            ]
            append_events(conn, events)
    return counts


def _adopt_one(
    conn: sqlite3.Connection,
    case_id: str,
    tickets: Sequence[FoundTicket],
    row: tuple[str, int | None, str] | None,
    now: datetime,
    source: str,
    counts: AdoptCounts,
) -> dict[str, Any] | None:
    """The ``adopted`` event of one case (None when nothing was adopted: the case already
    had the ticket, or it is flagged for a person)."""
    ticket_ids = sorted({t.ticket_id for t in tickets})
    status, known_ticket, widget = row if row else (None, None, ADOPTED_WIDGET)
    chosen = min(tickets, key=lambda t: t.ticket_id)  # the first one created
    if status in (CaseStatus.WITHHELD, CaseStatus.IGNORED):
        # Decided not to send, yet Zendesk has a ticket (or several): a person must find out
        # who sent it; the decision stands.
        facts = {"ledger_status": status}
        flag_case(conn, case_id, TICKET_FOR_WITHHELD, ticket_ids, now, source=source, details=facts)
        counts.flagged.append(case_id)
        return None
    if len(ticket_ids) > 1:
        # Not a silent pick: the case is flagged for a person with every ticket id (`status`
        # shows them) and none is deleted; the ledger records the first one created, so no
        # sync creates another.
        flag_case(conn, case_id, DUPLICATE_TICKETS, ticket_ids, now, source=source)
        counts.flagged.append(case_id)
        if status == CaseStatus.SYNCED:
            return None
    elif status == CaseStatus.SYNCED and known_ticket == chosen.ticket_id:
        counts.already += 1
        return None
    elif status == CaseStatus.SYNCED:
        # Synced with another ticket: a person must look.
        mismatch = {"ledger_ticket_id": known_ticket}
        flag_case(conn, case_id, TICKET_MISMATCH, ticket_ids, now, source=source, details=mismatch)
        counts.flagged.append(case_id)
        return None
    _mark_synced(conn, case_id, chosen, clock.format(now))
    counts.adopted += 1
    evidence = "ticket found in Zendesk; the record of its transfer is not in this ledger"
    tags = {t for ticket in tickets for t in ticket.tags if t.startswith(_KEPT_TAG_PREFIXES)}
    details: dict[str, Any] = {"source": source, "evidence": evidence}
    details["ticket_created_at"] = tickets[0].created_at
    details |= {"tags": sorted(tags)} | ({"ticket_ids": ticket_ids} if len(ticket_ids) > 1 else {})
    return {
        "event": Event.ADOPTED,
        "subject_ref": chosen.subject_ref,
        "case_id": case_id,
        "widget_id": None if widget == ADOPTED_WIDGET else widget,
        "ticket_id": chosen.ticket_id,
        "details": details,
    }


def _mark_synced(conn: sqlite3.Connection, case_id: str, ticket: FoundTicket, stamp: str) -> None:
    """The case is synced with ``ticket``: a new row, or one pending, failed or pushing in
    this ledger whose ticket exists (its own references win: made from the chat itself)."""
    started = ticket.created_at
    conn.execute(
        """INSERT INTO cases (case_id, widget_id, day, started_at, status, reason, ticket_id,
               synced_at, first_seen_at, updated_at, subject_ref, name_ref)
           VALUES (?, ?, ?, ?, ?, 'adopted from Zendesk', ?, ?, ?, ?, ?, ?)
           ON CONFLICT(case_id) DO UPDATE SET status = excluded.status,
               ticket_id = excluded.ticket_id, synced_at = excluded.synced_at,
               reason = excluded.reason, error = NULL, raw = NULL,
               raw_purged_at = excluded.synced_at, updated_at = excluded.updated_at,
               subject_ref = COALESCE(cases.subject_ref, excluded.subject_ref),
               name_ref = CASE WHEN cases.subject_ref IS NULL THEN excluded.name_ref
                               ELSE cases.name_ref END""",
        (
            case_id,
            ADOPTED_WIDGET,
            started[:10] if started else None,
            started,
            CaseStatus.SYNCED,
            ticket.ticket_id,
            stamp,
            stamp,
            stamp,
            ticket.subject_ref,
            ticket.name_ref,
        ),
    )


def record_restored(
    db: sqlite_utils.Database,
    now: datetime,
    *,
    backup_name: str,
    backup_head: tuple[int, str],
    details: Mapping[str, Any],
    actor: str,
    run_id: str,
) -> None:
    """Append the ``restored`` event naming the backup's chain head."""
    head = {"backup_head_seq": backup_head[0], "backup_head_hash": backup_head[1]}
    with transaction(db) as conn:
        append_events(
            conn,
            event=Event.RESTORED,
            case_id="-",
            recorded_at=clock.format(now),
            run_id=run_id,
            actor=actor,
            details={"backup": backup_name, **head, **details},
        )
