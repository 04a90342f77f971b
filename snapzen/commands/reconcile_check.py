"""`snapzen ledger reconcile`: does the ledger agree with Zendesk? Read-only towards Zendesk.

Reads every ticket changed since the ledger's first activity through the cursor-based
Incremental Ticket Export (1,000 tickets a request, paced at its own 10 a minute by the
client, at most ``max_requests`` requests), then, under the writer lock, reads the ledger's
cases, compares (snapzen.commands.reconcile_findings) and records the check as a chained
``reconciled`` event. The export runs without the lock, so a cron sync is never held up by it; a
case synced after the export began is not judged missing when the export does not show its
ticket (it may be newer than the pages); one the export shows deleted is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from snapzen.commands.clients import zendesk_from
from snapzen.commands.reconcile import MIN_AGE, TicketExport
from snapzen.commands.reconcile_findings import Comparison, SeenTicket, compare
from snapzen.ledger.evidence.reconciliation import (
    RUN_KIND,
    earliest_activity,
    ledger_cases,
    record_reconciliation,
)
from snapzen.ledger.store import runs
from snapzen.ledger.store.db import ensure_ledger, locked_ledger, open_ledger
from snapzen.support import clock, errors
from snapzen.support.lock import writer_lock
from snapzen.support.log import bound_run, get_logger
from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.reconcile_check")

DEFAULT_MAX_REQUESTS = 1000  # a million tickets; 100 minutes at 10 requests a minute
# Before the ledger's first activity: a ticket is created after its chat started, but an
# imported ticket's clock and ours may differ.
MARGIN = timedelta(days=1)
# After the export, the lock is waited for this long (a sync pass, a backfill slice).
LOCK_WAIT_SECONDS = 900.0


@dataclass
class ExportRead:
    requests: int = 0
    complete: bool = False  # read to end_of_stream


@dataclass
class ReconcileCheck:
    run_id: str
    since: str
    export_started: str
    finished_at: str
    max_requests: int
    read: ExportRead
    comparison: Comparison = field(default_factory=Comparison)

    @property
    def exit_code(self) -> int:
        clean = self.read.complete and not self.comparison.findings
        return errors.EXIT_OK if clean else errors.EXIT_PARTIAL

    def details(self) -> dict[str, Any]:
        """What the ``runs`` row keeps (counts, never the findings themselves)."""
        return {
            "since": self.since,
            "export_started": self.export_started,
            "requests": self.read.requests,
            "complete": self.read.complete,
            "tickets_seen": self.comparison.tickets_seen,
            "cases_checked": self.comparison.cases_checked,
            "not_judged": self.comparison.not_judged,
            "findings": self.comparison.counts(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "finished_at": self.finished_at,
            "max_requests": self.max_requests,
            **self.details(),
            "findings_total": len(self.comparison.findings),
            "found": [finding.as_dict() for finding in self.comparison.findings],
            "exit_code": self.exit_code,
        }


def export_tickets(
    sink: TicketExport, start: int, max_requests: int, read: ExportRead
) -> Iterator[SeenTicket]:
    """The export's tickets, at most ``max_requests`` pages (one request each); ``read``
    counts them and says whether the stream ended. Stopped at the bound, it is left
    incomplete (one more request would be needed to know)."""
    pages = sink.incremental_tickets(start)
    try:
        while read.requests < max_requests:
            try:
                page = next(pages)
            except StopIteration:
                read.complete = True
                return
            read.requests += 1
            for ticket in page:
                seen = SeenTicket.of(ticket)
                if seen is not None:
                    yield seen
    finally:
        close = getattr(pages, "close", None)  # a generator: no request left half-made
        if close is not None:
            close()


def start_time(settings: Settings, since: date | None, now: datetime) -> datetime:
    """``since`` (a UTC day), else a day before the ledger's first chat or run; never less
    than a minute ago."""
    if since is not None:
        start = datetime.combine(since, time(0), UTC)
    else:
        with closing(open_ledger(settings.ledger, read_only=True)) as db:
            earliest = earliest_activity(db.conn)
        start = datetime.fromisoformat(earliest) - MARGIN if earliest else now
    return min(start.astimezone(UTC), now - MIN_AGE)


def reconcile_check(
    settings: Settings,
    *,
    actor: str,
    since: date | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    sink: TicketExport | None = None,
    now: Callable[[], datetime] = clock.now,
) -> ReconcileCheck:
    """Compare and record; Zendesk is only read. LockHeld (exit 0) when another writer
    holds the lock at the start: the check is not spent only to find it cannot be recorded."""
    if max_requests < 1:
        raise errors.ConfigError("--max-requests must be at least 1")
    ensure_ledger(settings.ledger.path)
    with writer_lock(settings.ledger.path, wait=False):
        pass
    run_id = runs.new_run_id(RUN_KIND)
    with bound_run(run_id, RUN_KIND):
        started = now()
        start = start_time(settings, since, started)
        sink = sink or zendesk_from(settings)
        read = ExportRead()
        latest: dict[int, SeenTicket] = {}
        for ticket in export_tickets(sink, int(start.timestamp()), max_requests, read):
            latest[ticket.ticket_id] = ticket  # changed twice: the last state counts
        with locked_ledger(settings.ledger, wait=True, timeout=LOCK_WAIT_SECONDS) as db:
            comparison = compare(
                ledger_cases(db.conn),
                latest.values(),
                complete=read.complete,
                since=clock.format(start),
                export_started=clock.format(started),
            )
            finished = clock.format(now())
            check = ReconcileCheck(
                run_id, clock.format(start), clock.format(started), finished, max_requests, read,
                comparison,
            )  # fmt: skip
            record_reconciliation(
                db, run_id, actor, finished, exit_code=check.exit_code, details=check.details()
            )
        level = log.info if check.exit_code == errors.EXIT_OK else log.warning
        level("reconciled", **check.details())
        return check
