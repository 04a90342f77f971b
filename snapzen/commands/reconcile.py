"""Reconciliation with Zendesk: find every `snapengage:` ticket and record it in the ledger.

Used by `snapzen init --adopt` (a new ledger for a Zendesk that already has tickets) and by
`snapzen ledger restore` (for everything since the backup). One lookup per case by
external_id would spend List Tickets' 100-a-minute budget (hours for a busy account); the
bulk reads bring a thousand tickets per request:
- ``incremental`` (default): the cursor-based Incremental Ticket Export, every ticket changed
  since a time, archived ones included and with no indexing delay (10 requests a minute);
- ``search``: Export Search Results for the ``snapengage`` tag (100 requests a minute, but a
  ticket from the last few minutes may not be indexed yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlite_utils

from snapzen.commands.inflight import InFlight, JobReads, Waiting, look_up, settle_jobs
from snapzen.commands.requesters import Refs, UserReads, with_references
from snapzen.ledger.store.adopt import AdoptCounts, FoundTicket, record_adoptions
from snapzen.support.log import get_logger

log = get_logger("snapzen.commands.reconcile")

EXTERNAL_PREFIX = "snapengage:"
# Zendesk refuses an incremental start_time less than a minute ago.
MIN_AGE = timedelta(seconds=61)


class Via(StrEnum):
    incremental = "incremental"
    search = "search"


class TicketExport(JobReads, UserReads, Protocol):
    def incremental_tickets(self, start_time: int) -> Iterator[list[dict[str, Any]]]: ...
    def search_export(
        self, query: str, page_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]: ...
    def show_ticket(self, ticket_id: int) -> dict[str, Any] | None: ...


@dataclass
class ReconcileResult:
    since: datetime
    via: Via
    pages: int = 0
    tickets_seen: int = 0  # tickets read (any external id)
    cases_found: int = 0  # distinct snapengage cases with a live ticket
    in_flight: int = 0  # cases the replaced ledger had left pushing
    looked_up: int = 0  # of those, found by external_id after the bulk read missed them
    counts: AdoptCounts = field(default_factory=AdoptCounts)

    def as_dict(self) -> dict[str, Any]:
        counters = {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}
        since = self.since.isoformat(timespec="seconds")
        return {"since": since, "via": self.via.value, **counters, **self.counts.as_dict()}


def find_tickets(
    sink: TicketExport, since: datetime, now: datetime, via: Via = Via.incremental
) -> tuple[dict[str, list[FoundTicket]], ReconcileResult, dict[int, dict[str, Any]]]:
    """Live `snapengage:` tickets, by case id (a ticket read twice counts once: its last
    state wins, so one deleted since is left out), the result, and the tickets by id."""
    result = ReconcileResult(since=since, via=via)
    latest: dict[int, dict[str, Any]] = {}
    if via is Via.incremental:
        start = min(since, now - MIN_AGE)
        pages = sink.incremental_tickets(int(start.timestamp()))
    else:
        pages = sink.search_export("type:ticket tags:snapengage")
    for page in pages:
        result.pages += 1
        result.tickets_seen += len(page)
        for ticket in page:
            ticket_id = ticket.get("id")
            external = ticket.get("external_id")
            ours = isinstance(external, str) and external.startswith(EXTERNAL_PREFIX)
            if isinstance(ticket_id, int) and ours:
                latest[ticket_id] = ticket
    found: dict[str, list[FoundTicket]] = {}
    for ticket_id, ticket in sorted(latest.items()):
        if ticket.get("status") == "deleted":
            continue
        case_id = str(ticket["external_id"]).removeprefix(EXTERNAL_PREFIX)
        found.setdefault(case_id, []).append(_found(ticket_id, ticket))
    result.cases_found = len(found)
    return found, result, latest


def _found(ticket_id: int, ticket: dict[str, Any]) -> FoundTicket:
    tags = ticket.get("tags") if isinstance(ticket.get("tags"), list) else []
    created = ticket.get("created_at")
    return FoundTicket(
        ticket_id=ticket_id,
        created_at=created if isinstance(created, str) else None,
        tags=tuple(str(t) for t in tags or ()),
    )


def _look_up_missed(
    sink: TicketExport,
    work: InFlight,
    found: dict[str, list[FoundTicket]],
    raw: dict[int, dict[str, Any]],
) -> int:
    """The in-flight cases the bulk read did not show, looked up by external_id (a search
    export lags; a ticket may sit outside the window): each ticket found is read by id."""
    missed = sorted(set(work.pushing) - set(found))
    added = 0
    for case_id, ticket_ids in look_up(sink, missed, EXTERNAL_PREFIX).items():
        for ticket_id in ticket_ids:
            ticket = sink.show_ticket(ticket_id)
            if ticket is None or ticket.get("external_id") != EXTERNAL_PREFIX + case_id:
                continue
            raw[ticket_id] = ticket
            found.setdefault(case_id, []).append(_found(ticket_id, ticket))
        added += case_id in found
    return added


def reconcile(
    db: sqlite_utils.Database,
    sink: TicketExport,
    *,
    since: datetime,
    now: datetime,
    source: str,
    actor: str,
    run_id: str,
    key: bytes,
    via: Via = Via.incremental,
    work: InFlight | None = None,
    waiting: Waiting | None = None,
    known: Callable[[Sequence[str]], Refs] | None = None,
) -> ReconcileResult:
    """Settle the imports in flight, find the tickets (network first, nothing written yet),
    then record them at once with their people's references.

    ``work``: what the replaced ledger had not finished (restore; empty for adoption, where
    Zendesk's list of unfinished jobs is all there is); ``waiting`` bounds the wait for those
    jobs (None: no wait, for tests of the recording alone); ``known`` gives the replaced
    ledger's references of a case."""
    work = work or InFlight()
    if waiting is not None:
        settle_jobs(sink, work, waiting)
    found, result, raw = find_tickets(sink, since, now, via)
    result.in_flight = len(work.pushing)
    result.looked_up = _look_up_missed(sink, work, found, raw)
    result.cases_found = len(found)
    found = with_references(found, raw, key, sink, known)
    result.counts = record_adoptions(db, found, now, source=source, actor=actor, run_id=run_id)
    log.info("reconciled", source=source, **result.as_dict())
    if result.counts.flagged:
        log.error(
            "reconcile_flagged_cases",
            cases=len(result.counts.flagged),
            first=result.counts.flagged[:10],
        )
    return result
