"""`snapzen ledger reconcile`: does the ledger agree with Zendesk? Read-only towards Zendesk.

Reads every ticket changed since the ledger's first activity through the cursor-based
Incremental Ticket Export (1,000 tickets a request, paced at its own 10 a minute by the
client, at most ``max_requests`` requests), then, under the writer lock, reads the ledger's
cases, compares and records the check as a chained ``reconciled`` event. The export runs
without the lock, so a cron sync is never held up by it; a case synced after the export began
is not judged missing when the export does not show its ticket (it may be newer than the
pages); one the export shows deleted is.

The comparison is pure (no I/O): the ledger's cases against the tickets the export shows,
as findings with what to do about each:
- **missing**: the ledger says a case was synced as ticket N; Zendesk has no ticket N, or
  N is deleted, and no erasure or retention sweep of snapzen's deleted it;
- **unknown**: a live ``snapengage:`` ticket the ledger does not record: no case for it, or
  a case the ledger holds as not sent (failed, pending, withheld, ignored);
- **duplicated**: two or more live tickets with the same ``external_id``;
- **wrong_case**: the ledger's ticket for case X carries another ``external_id``.

Flags raised for a person (several tickets for a case, ...) that Zendesk now settles
(snapzen.commands.flag_desk) are closed in the transaction that records the check, each
with its chained event.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from snapzen.clients.search_lag import MIN_AGE
from snapzen.commands import flag_desk
from snapzen.commands.reconcile import SeenTicket, live_by_case
from snapzen.ledger.evidence.reconciliation import (
    RUN_KIND,
    LedgerCase,
    earliest_activity,
    ledger_cases,
    record_reconciliation,
)
from snapzen.ledger.store import runs
from snapzen.ledger.store.case_flags import open_flags
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import ensure_ledger, locked_ledger, open_ledger
from snapzen.policy.transform import EXTERNAL_ID_PREFIX as EXTERNAL_PREFIX
from snapzen.support import clock, errors
from snapzen.support.lock import writer_lock
from snapzen.support.log import bound_run, get_logger
from snapzen.support.settings import Settings

if TYPE_CHECKING:
    from snapzen.clients.zendesk import ZendeskClient

log = get_logger("snapzen.commands.reconcile_check")

DEFAULT_MAX_REQUESTS = 1000  # a million tickets; 100 minutes at 10 requests a minute
# Before the ledger's first activity: a ticket is created after its chat started, but an
# imported ticket's clock and ours may differ.
MARGIN = timedelta(days=1)
# After the export, the lock is waited for this long (a sync pass, a backfill slice).
LOCK_WAIT_SECONDS = 900.0


class Kind(StrEnum):
    missing = "missing"
    unknown = "unknown"
    duplicated = "duplicated"
    wrong_case = "wrong_case"


@dataclass(frozen=True)
class Finding:
    kind: Kind
    case_id: str
    ticket_ids: list[int]  # the tickets concerned, the ledger's first when it names one
    detail: str
    suggestion: str


@dataclass
class Comparison:
    findings: list[Finding] = field(default_factory=list)
    cases_checked: int = 0  # synced cases whose ticket was looked for
    not_judged: int = 0  # synced cases whose absence cannot be judged (see compare)
    tickets_seen: int = 0  # distinct tickets in the export, any external_id

    def counts(self) -> dict[str, int]:
        return {kind.value: sum(f.kind is kind for f in self.findings) for kind in Kind}


RESTORE_IN_ZENDESK = (
    "deleted in Zendesk outside snapzen: restore it from Zendesk's deleted tickets (30 days), "
    "or review by hand; the ledger keeps its transfer record"
)
NOT_OURS = (
    "not made through this ledger: after a restore from an older backup `snapzen ledger "
    "restore` records such tickets, for a lost ledger `snapzen init --adopt`; otherwise review "
    "by hand (another snapzen, an import by hand)"
)
NOT_SENT = (
    "review by hand: `snapzen retry` (or the next sync, for a pending case) would import it "
    "a second time; `snapzen dismiss` ends a failed case"
)
KEEP_ONE = "review by hand: keep {keep}, delete the others in Zendesk (snapzen deletes nothing)"
WRONG = (
    "review by hand: the ticket was edited in Zendesk, or recorded against the wrong chat; "
    "access and erasure check external_id and leave it alone"
)


def compare(
    cases: Iterable[LedgerCase],
    tickets: Iterable[SeenTicket],
    *,
    complete: bool = True,
    since: str | None = None,
    export_started: str | None = None,
) -> Comparison:
    """Findings, by kind then case id.

    When a ticket is absent from the export, that proves nothing (the case is counted in
    ``not_judged``) if the export was not read to its end (``complete`` False), if the chat
    started before ``since`` (ISO UTC), the time the export reads changes from (its ticket
    may not have changed since), or if the case was synced at or after ``export_started``
    (ISO UTC, to the second: its ticket may have been created after the export passed).
    A ticket the export shows deleted is judged in every one of these cases: the export
    saw it, deleted, whenever it was made."""
    result = Comparison()
    latest: dict[int, SeenTicket] = {}
    for seen in tickets:
        latest[seen.ticket_id] = seen
    result.tickets_seen = len(latest)
    by_case = live_by_case(latest)
    ledger = {case.case_id: case for case in cases}
    recorded = {c.ticket_id for c in ledger.values() if c.ticket_id is not None}
    found: list[Finding] = []
    for case_id, ids in by_case.items():
        known = ledger.get(case_id)
        unrecorded = [i for i in ids if i not in recorded]
        if known is None or known.status not in (CaseStatus.SYNCED, CaseStatus.PUSHING):
            if unrecorded:
                found.append(_unknown(case_id, unrecorded, known))
        elif len(ids) > 1:
            found.append(_duplicated(case_id, ids, known))
    for case in ledger.values():
        if case.status != CaseStatus.SYNCED or case.ticket_id is None or case.deleted:
            continue
        result.cases_checked += 1
        ticket = latest.get(case.ticket_id)
        others = [i for i in by_case.get(case.case_id, []) if i != case.ticket_id]
        if ticket is None or ticket.deleted:
            recent = export_started is not None and (case.synced_at or "") >= export_started
            older = since is not None and (case.started_at or "") < since
            if ticket is None and (not complete or older or recent):
                result.not_judged += 1
                continue
            found.append(_missing(case, ticket, others))
        elif ticket.case_id != case.case_id:
            found.append(_wrong_case(case, ticket, others))
    result.findings = sorted(found, key=lambda f: (list(Kind).index(f.kind), f.case_id))
    return result


def _duplicated(case_id: str, ids: list[int], case: LedgerCase | None) -> Finding:
    named = case.ticket_id if case is not None and case.ticket_id in ids else None
    ordered = ([named] if named is not None else []) + [i for i in ids if i != named]
    keep = f"ticket {named}, the one the ledger names" if named is not None else "one of them"
    return Finding(
        Kind.duplicated,
        case_id,
        ordered,
        f"{len(ids)} live tickets carry {EXTERNAL_PREFIX}{case_id}",
        KEEP_ONE.format(keep=keep),
    )


def _unknown(case_id: str, ids: list[int], case: LedgerCase | None) -> Finding:
    """Live tickets of ours the ledger does not name, for a case it has not sent (a synced
    case's other tickets are reported with it; a pushing case's are in flight)."""
    several = f"{len(ids)} tickets; " if len(ids) > 1 else ""
    if case is None:
        return Finding(Kind.unknown, case_id, ids, f"{several}no case in the ledger", NOT_OURS)
    detail = f"{several}the ledger holds the case as {case.status}, with no ticket"
    return Finding(Kind.unknown, case_id, ids, detail, NOT_SENT)


def _missing(case: LedgerCase, ticket: SeenTicket | None, others: list[int]) -> Finding:
    state = "not in Zendesk" if ticket is None else "deleted in Zendesk"
    detail = f"the ledger's ticket {case.ticket_id} is {state}"
    suggestion = RESTORE_IN_ZENDESK
    if others:
        detail += f"; Zendesk has ticket(s) {_ids(others)} for the case"
        suggestion = "review by hand which ticket stands for the chat"
    named = (case.ticket_id,) if case.ticket_id is not None else ()
    return Finding(Kind.missing, case.case_id, [*named, *others], detail, suggestion)


def _wrong_case(case: LedgerCase, ticket: SeenTicket, others: list[int]) -> Finding:
    carries = ticket.external_id if ticket.external_id is not None else "no external_id"
    detail = f"the ledger's ticket {case.ticket_id} carries {carries}"
    if others:
        detail += f"; Zendesk's ticket for the case is {_ids(others)}"
    return Finding(Kind.wrong_case, case.case_id, [ticket.ticket_id, *others], detail, WRONG)


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)


# ---------------------------------------------------------------- the check


@dataclass
class ReconcileCheck:
    run_id: str
    since: str
    export_started: str
    max_requests: int
    finished_at: str = ""
    requests: int = 0  # export requests made
    complete: bool = False  # the export read to its end_of_stream
    comparison: Comparison = field(default_factory=Comparison)
    resolved: list[flag_desk.Settled] = field(default_factory=list)  # flags it closed

    @property
    def exit_code(self) -> int:
        clean = self.complete and not self.comparison.findings
        return errors.EXIT_OK if clean else errors.EXIT_PARTIAL

    def details(self) -> dict[str, Any]:
        """What the ``runs`` row keeps (counts, never the findings themselves)."""
        return {
            "since": self.since,
            "export_started": self.export_started,
            "requests": self.requests,
            "complete": self.complete,
            "tickets_seen": self.comparison.tickets_seen,
            "cases_checked": self.comparison.cases_checked,
            "not_judged": self.comparison.not_judged,
            "findings": self.comparison.counts(),
            "flags_resolved": len(self.resolved),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "finished_at": self.finished_at,
            "max_requests": self.max_requests,
            **self.details(),
            "findings_total": len(self.comparison.findings),
            "found": [asdict(finding) for finding in self.comparison.findings],
            "resolved": [asdict(flag) for flag in self.resolved],
            "exit_code": self.exit_code,
        }


def export_tickets(sink: ZendeskClient, start: int, check: ReconcileCheck) -> Iterator[SeenTicket]:
    """The export's tickets, at most ``check.max_requests`` pages (one request each), counted
    into ``check`` with whether the stream ended. Stopped at the bound, it is left incomplete
    (one more request would be needed to know)."""
    pages = sink.incremental_tickets(start)
    try:
        for page in itertools.islice(pages, check.max_requests):
            check.requests += 1
            yield from filter(None, map(SeenTicket.of, page))
        check.complete = check.requests < check.max_requests
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
        start = clock.parse(earliest) - MARGIN if earliest else now
    return min(start.astimezone(UTC), now - MIN_AGE)


def reconcile_check(
    settings: Settings,
    *,
    actor: str,
    since: date | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    sink: ZendeskClient | None = None,
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
        if sink is None:
            # Here, not at the top: `status` (a scrape, a HEALTHCHECK) reads Kind from this
            # module and must not load the HTTP stack with it.
            from snapzen.commands.clients import zendesk_from

            sink = zendesk_from(settings)
        check = ReconcileCheck(run_id, clock.format(start), clock.format(started), max_requests)
        exported = export_tickets(sink, int(start.timestamp()), check)
        latest = {ticket.ticket_id: ticket for ticket in exported}  # the last state counts
        with locked_ledger(settings.ledger, wait=True, timeout=LOCK_WAIT_SECONDS) as db:
            cases = list(ledger_cases(db.conn))
            check.comparison = compare(
                cases,
                latest.values(),
                complete=check.complete,
                since=check.since,
                export_started=check.export_started,
            )
            flags = open_flags(db, limit=-1)
            check.resolved = flag_desk.judge(
                flags, cases, latest, export_started=check.export_started
            )
            check.finished_at = clock.format(now())
            record_reconciliation(
                db,
                run_id,
                actor,
                check.finished_at,
                exit_code=check.exit_code,
                details=check.details(),
                resolved=[(flag.case_id, flag.kind, flag.how()) for flag in check.resolved],
            )
        level = log.info if check.exit_code == errors.EXIT_OK else log.warning
        level("reconciled", **check.details())
        return check
