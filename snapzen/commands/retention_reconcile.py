"""``retention sweep --reconcile``: expired tickets Zendesk holds that the ledger does not know.

Every ticket snapzen creates carries ``expires_YYYY_MM`` (the month its retention ends), so a
ticket whose month is over is due even when the local database lost it (a restore from an old
backup, a database started afresh, a second installation). Search finds them, archived ones
included (List Tickets does not); tickets the database knows are left to the normal sweep,
which decides on their recorded ``retention_until``. The current month is never searched: the
tag does not say which day in it the retention ends.

Search lags writes by minutes, so a ticket deleted moments ago may still be found: tickets
with an ``erased``/``expired`` event are skipped. Holds apply as in the sweep. Each ticket
deleted gets an ``expired`` event with ``details.reconciled`` and the tag it was found by.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlite_utils

from snapzen.clients.ticket_deletion import MAX_BATCH
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands.clients import ticket_deleter_from
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event, decision
from snapzen.ledger.rights import holds
from snapzen.ledger.store import lookups
from snapzen.ledger.store.db import transaction
from snapzen.support import clock as wall_clock
from snapzen.support.log import get_logger

if TYPE_CHECKING:
    from snapzen.commands.retention import SweepResult
    from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.retention")


def expired_tags(as_of: date, months_back: int) -> list[str]:
    """Tags of the ``months_back`` whole months before ``as_of``'s month, newest first."""
    year, month = as_of.year, as_of.month
    tags = []
    for _ in range(months_back):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        tags.append(f"expires_{year:04d}_{month:02d}")
    return tags


def reconcile(
    db: sqlite_utils.Database,
    api: ZendeskClient,
    result: SweepResult,
    settings: Settings,
    *,
    months_back: int,
    actor: str,
    clock: Callable[[], datetime],
) -> None:
    """Delete and record the expired-tagged tickets the database does not know: their counts
    in ``result.reconciled`` (months, found, deleted, already_gone, held, failed), failures
    and holds added to the sweep's own."""
    assert result.run_id is not None
    counts = dict.fromkeys(("months", "found", "deleted", "already_gone", "held", "failed"), 0)
    active = holds.active(db.conn)
    found: dict[int, tuple[str, str | None]] = {}  # ticket id -> (tag, case id)
    for tag in expired_tags(result.as_of, months_back):
        counts["months"] += 1
        for ticket in api.search_tickets(f"type:ticket tags:{tag}"):
            ticket_id = ticket.get("id")
            if not isinstance(ticket_id, int) or ticket_id in found:
                continue
            if tag not in (ticket.get("tags") or []) or not lookups.ticket_unknown(
                db.conn, ticket_id
            ):
                continue
            external = ticket.get("external_id")
            case_id = str(external).removeprefix("snapengage:") if external else None
            if active.held(ticket_id=ticket_id, case_id=case_id):
                counts["held"] += 1
                continue
            found[ticket_id] = (tag, case_id)
    counts["found"] = len(found)
    deleter, ids = ticket_deleter_from(settings, api), list(found)
    for start in range(0, len(ids), MAX_BATCH):
        batch = ids[start : start + MAX_BATCH]
        outcomes = deleter.delete(batch, purge=result.purge)
        stamp = wall_clock.format(clock())
        with transaction(db) as conn:
            for ticket_id in batch:
                outcome = outcomes[ticket_id]
                gone = "already_gone" if outcome.already_gone else "deleted"
                counts[gone if outcome.gone else "failed"] += 1
                if not outcome.gone:
                    continue
                tag, case_id = found[ticket_id]
                expired = decision(
                    Event.EXPIRED,
                    case_id or f"ticket:{ticket_id}",
                    stamp,
                    details={
                        "reconciled": True,
                        "tag": tag,
                        "purged": outcome.purged,
                        "already_gone": outcome.already_gone,
                    },
                    ticket_id=ticket_id,
                    run_id=result.run_id,
                    actor=actor,
                )
                append_events(conn, [expired])
    result.reconciled = counts
    result.failed += counts["failed"]
    result.held += counts["held"]
    log.info("retention_reconciled", **counts)
