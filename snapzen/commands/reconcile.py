"""Reconciliation with Zendesk: find every `snapengage:` ticket and record it in the ledger.

Used by `snapzen init --adopt` (a new ledger for a Zendesk that already has tickets) and by
`snapzen ledger restore` (for everything since the backup). One lookup per case by
external_id would spend List Tickets' 100-a-minute budget (hours for a busy account); the
bulk reads bring a thousand tickets per request:
- ``incremental`` (default): the cursor-based Incremental Ticket Export, every ticket changed
  since a time, archived ones included and with no indexing delay (10 requests a minute);
- ``search``: Export Search Results for the ``snapengage`` tag (100 requests a minute); search
  indexes a ticket up to a few minutes late, so the tickets changed in the last ``SEARCH_LAG``
  are read from the incremental export too (``clients.search_lag.recently_changed``).

Imports in flight are settled first. A reconciliation reads Zendesk once. An import job that
is still queued or working at that moment (a sync killed after its POST, an ambiguous POST
whose job Zendesk had not started) creates its tickets a few seconds later: the reconciliation
missed them, the restored or new ledger has those cases pending or absent, and the next sync
imports them a second time.

So, before anything is read or recorded:
- the replaced ledger (restore) is read for every case it had not finished: the cases left
  ``pushing`` with their job ids and push times, and the earliest time of any unfinished case
  (the reconciled window must reach back to it);
- every stored job id is polled until Zendesk reports it finished (or no longer shows it);
- Zendesk's list of unfinished jobs is polled until no import job is queued or working (an
  ambiguous POST left no job id; for adoption Zendesk is the only record), unless every case
  without a job id was pushed longer ago than ``recovery_grace_seconds``;
- bounded by ``zendesk.job_timeout_seconds``: past it the command refuses, changing nothing.
After the bulk read, the in-flight cases it did not find are looked up by ``external_id``.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from snapzen.clients.search_lag import MIN_AGE, recently_changed
from snapzen.commands.requesters import with_references
from snapzen.commands.run import recorded_run
from snapzen.ledger.rights.erasure_reapply import JournalChoice, ReapplyResult, restore_union
from snapzen.ledger.store import queries
from snapzen.ledger.store.adopt import AdoptCounts, FoundTicket, record_adoptions
from snapzen.ledger.store.db import LedgerError, open_db
from snapzen.policy.models import still_running
from snapzen.policy.transform import EXTERNAL_ID_PREFIX, external_id
from snapzen.support import clock
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.sync.results_check import lookup_is_conclusive

if TYPE_CHECKING:
    from snapzen.clients.zendesk import ZendeskClient

log = get_logger("snapzen.commands.reconcile")


@dataclass
class InFlight:
    """What the replaced ledger had not finished."""

    pushing: dict[str, str | None] = field(default_factory=dict)  # case id -> job id
    pushed_at: dict[str, datetime | None] = field(default_factory=dict)  # pushing, no job id
    earliest: datetime | None = None  # the oldest unfinished case's first sight
    readable: bool = True  # False: the replaced file could not be read (damaged, other key)

    def merged(self, other: InFlight) -> InFlight:
        """Both ledgers' unfinished work (this one's job id wins for a case in both)."""
        return InFlight(
            pushing={**other.pushing, **self.pushing},
            pushed_at={**other.pushed_at, **self.pushed_at},
            earliest=min(filter(None, (self.earliest, other.earliest)), default=None),
            readable=self.readable,
        )

    @property
    def job_ids(self) -> list[str]:
        return sorted({j for j in self.pushing.values() if j})


def read_in_flight(path: Path, key: bytes) -> InFlight:
    """The replaced ledger's unfinished cases (read-only; nothing is written to it)."""
    found = InFlight()
    if not path.exists():
        return found
    try:
        with closing(open_db(path, read_only=True, key=key, label="replaced ledger")) as db:
            for case_id, job_id, pushed_at in queries.pushing_cases(db.conn):
                found.pushing[case_id] = job_id or None
                if not job_id:
                    found.pushed_at[case_id] = _time(pushed_at)
            found.earliest = _time(queries.earliest_unfinished(db.conn))
    except (LedgerError, sqlite3.Error) as exc:  # damaged, another key
        log.warning("restore_replaced_unreadable", error=str(exc))
        found.readable = False
    return found


def _time(stored: object) -> datetime | None:
    """A stored time of the replaced ledger, None when missing or unreadable (it may be
    damaged: that is why it is replaced)."""
    try:
        return clock.parse_optional(stored) if isinstance(stored, str) else None
    except ValueError:
        return None


def replaced_refs(
    path: Path, key: bytes, case_ids: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """The subject and name references the replaced ledger kept for ``case_ids``: a case
    synced after the backup was staged there from its SnapEngage chat, with both."""
    if not case_ids or not path.exists():
        return {}
    try:
        with closing(open_db(path, read_only=True, key=key, label="replaced ledger")) as db:
            return queries.case_refs(db.conn, case_ids)
    except (LedgerError, sqlite3.Error):
        return {}  # an unreadable replaced ledger gives nothing


@dataclass
class Waiting:
    """How settle_jobs waits: the bound, the poll interval, the clock and a progress line."""

    timeout: float
    poll: float
    grace: timedelta
    now: Callable[[], datetime]
    progress: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def settle_jobs(sink: ZendeskClient, work: InFlight, waiting: Waiting) -> int:
    """Wait until no import that could still create a ticket is unfinished; the number of
    polls. LedgerError (nothing changed) when ``waiting.timeout`` passes first."""
    deadline = waiting.monotonic() + waiting.timeout
    pending = work.job_ids
    absent: dict[str, int] = {}
    polls = 0
    while True:
        polls += 1
        if pending:
            pending = still_running(pending, sink.job_statuses(pending), absent)
        listed = sink.unfinished_jobs()
        quiet = lookup_is_conclusive(listed)
        if not pending and (quiet or _grace_passed(work, waiting)):
            if polls > 1:
                waiting.progress("every import job in flight has finished")
            return polls
        if waiting.monotonic() + waiting.poll > deadline:
            raise LedgerError(
                f"import jobs are still running in Zendesk after {waiting.timeout:.0f} s "
                f"({len(pending)} of this ledger's, {len(listed)} listed unfinished): their "
                "tickets would be created twice; nothing was changed, run the command again "
                "once they finish (zendesk.job_timeout_seconds bounds the wait)"
            )
        if polls == 1 or polls % 10 == 0:
            waiting.progress(
                f"waiting for import jobs in flight to finish: {len(pending)} of this "
                f"ledger's, {len(listed)} listed unfinished by Zendesk"
            )
        waiting.sleep(waiting.poll)


def _grace_passed(work: InFlight, waiting: Waiting) -> bool:
    """Every ambiguous push (no job id) is older than the recovery grace: its job, if any,
    ran long ago. Never true for adoption (no ledger says when anything was pushed)."""
    if not work.pushed_at:
        return False
    cutoff = waiting.now() - waiting.grace
    return all(at is not None and at <= cutoff for at in work.pushed_at.values())


# ---------------------------------------------------------------- the bulk read


@dataclass
class ReconcileResult:
    since: datetime
    via: str  # incremental | search: how Zendesk was read (find_tickets)
    pages: int = 0
    tickets_seen: int = 0  # tickets read (any external id)
    cases_found: int = 0  # distinct snapengage cases with a live ticket
    in_flight: int = 0  # cases the replaced ledger had left pushing
    looked_up: int = 0  # of those, found by external_id after the bulk read missed them
    counts: AdoptCounts = field(default_factory=AdoptCounts)

    def as_dict(self) -> dict[str, Any]:
        counters = {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}
        since = self.since.isoformat(timespec="seconds")
        return {"since": since, "via": str(self.via), **counters, **self.counts.as_dict()}


@dataclass(frozen=True)
class SeenTicket:
    """One ticket as an export shows it (a ticket changed twice is shown twice: the last one
    read is its state)."""

    ticket_id: int
    external_id: str | None
    deleted: bool
    created_at: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, ticket: Mapping[str, Any]) -> SeenTicket | None:
        ticket_id, external = ticket.get("id"), ticket.get("external_id")
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
            return None
        created, tags = ticket.get("created_at"), ticket.get("tags")
        return cls(
            ticket_id,
            external if isinstance(external, str) else None,
            ticket.get("status") == "deleted",
            created if isinstance(created, str) else None,
            tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
        )

    @property
    def case_id(self) -> str | None:
        """The case of a `snapengage:` ticket (None for any other)."""
        external = self.external_id or ""
        ours = external.startswith(EXTERNAL_ID_PREFIX)
        return external.removeprefix(EXTERNAL_ID_PREFIX) if ours else None

    def found(self) -> FoundTicket:
        return FoundTicket(ticket_id=self.ticket_id, created_at=self.created_at, tags=self.tags)


def live_by_case(tickets: Mapping[int, SeenTicket]) -> dict[str, list[int]]:
    """The live `snapengage:` tickets among ``tickets`` (by id, each in its last state), by
    case id, each case's ticket ids ascending."""
    by_case: dict[str, list[int]] = {}
    for ticket_id, shown in sorted(tickets.items()):
        if shown.case_id is not None and not shown.deleted:
            by_case.setdefault(shown.case_id, []).append(ticket_id)
    return by_case


def find_tickets(
    sink: ZendeskClient, since: datetime, now: datetime, via: str = "incremental"
) -> tuple[dict[str, list[FoundTicket]], ReconcileResult, dict[int, dict[str, Any]]]:
    """Live `snapengage:` tickets, by case id (a ticket read twice counts once: its last
    state wins, so one deleted since is left out), the result, and the tickets by id."""
    result = ReconcileResult(since=since, via=via)
    latest: dict[int, dict[str, Any]] = {}
    seen: dict[int, SeenTicket] = {}
    if via != "search":
        start = min(since, now - MIN_AGE)
        pages = sink.incremental_tickets(int(start.timestamp()))
    else:  # the lag window last: a ticket's newest state wins
        tagged = sink.search_export("type:ticket tags:snapengage")
        pages = itertools.chain(tagged, recently_changed(sink, now))
    for page in pages:
        result.pages += 1
        result.tickets_seen += len(page)
        for ticket in page:
            shown = SeenTicket.of(ticket)
            if shown is not None and shown.case_id is not None:
                seen[shown.ticket_id], latest[shown.ticket_id] = shown, ticket
    found = {case: [seen[i].found() for i in ids] for case, ids in live_by_case(seen).items()}
    result.cases_found = len(found)
    return found, result, latest


def _look_up_missed(
    sink: ZendeskClient,
    work: InFlight,
    found: dict[str, list[FoundTicket]],
    raw: dict[int, dict[str, Any]],
) -> int:
    """The in-flight cases the bulk read did not show, looked up by external_id (a search
    export lags; a ticket may sit outside the window): each ticket found is read by id."""
    missed = sorted(set(work.pushing) - set(found))
    for case_id in missed:
        for ticket_id in sorted(set(sink.find_ticket_ids(external_id(case_id)))):
            ticket = sink.show_ticket(ticket_id) or {}
            shown = SeenTicket.of(ticket)
            if shown is None or shown.case_id != case_id:
                continue
            raw[ticket_id] = ticket
            found.setdefault(case_id, []).append(shown.found())
    added = sum(case_id in found for case_id in missed)
    log.info("inflight_looked_up", cases=len(missed), found=added)
    return added


@dataclass
class CatchUp:
    """What `init --adopt` and `ledger restore` share: who runs it, how Zendesk is read, the
    erasure journal to re-apply (or the operator's statement that there is none), where
    progress lines go (None: the log); ``sink`` and ``now`` are for tests."""

    actor: str = "cli"
    via: str = "incremental"
    erasure_journal: Path | None = None
    no_erasure_journal: bool = False
    progress: Callable[[str], None] | None = None
    sink: ZendeskClient | None = None
    now: datetime = field(default_factory=clock.now)


def catch_up(
    db: sqlite_utils.Database,
    settings: Settings,
    how: CatchUp,
    journal: JournalChoice,
    kind: str,
    *,
    since: datetime,
    work: InFlight | None = None,
    replaced: Path | None = None,
    before: Callable[[str], None] = lambda _run_id: None,
) -> tuple[ReconcileResult, ReapplyResult]:
    """One recorded run (``kind``: init or restore): ``before`` (given the run id); the
    imports in flight settled (``work``: what the replaced ledger had not finished; empty for
    adoption, where Zendesk's list of unfinished jobs is all there is); the tickets found
    (network first, nothing written yet), then recorded at once with their people's
    references (the ``replaced`` ledger's, where it has them); then the rights journal
    (united with the ``replaced`` ledger's) re-applied."""
    assert how.sink is not None
    sink, now, key, work = how.sink, how.now, require_ledger_key(settings), work or InFlight()
    source, command = ("init --adopt",) * 2 if kind == "init" else ("restore", "ledger restore")
    with recorded_run(db, kind, how.actor, now=clock.reader(now)) as run:
        before(run.run_id)
        zendesk = settings.zendesk
        waiting = Waiting(
            timeout=zendesk.job_timeout_seconds,
            poll=zendesk.job_poll_seconds,
            grace=timedelta(seconds=zendesk.recovery_grace_seconds),
            now=clock.now,
            progress=how.progress or (lambda line: log.info(f"{kind}_progress", message=line)),
        )
        settle_jobs(sink, work, waiting)
        found, result, raw = find_tickets(sink, since, now, how.via)
        result.in_flight = len(work.pushing)
        result.looked_up = _look_up_missed(sink, work, found, raw)
        result.cases_found = len(found)
        known = (lambda ids: replaced_refs(replaced, key, ids)) if replaced else None
        found = with_references(found, raw, key, sink, known)
        result.counts = record_adoptions(
            db, found, now, source=source, actor=how.actor, run_id=run.run_id
        )
        log.info("reconciled", source=source, **result.as_dict())
        if result.counts.flagged:
            log.error(
                "reconcile_flagged_cases",
                cases=len(result.counts.flagged),
                first=result.counts.flagged[:10],
            )
        # A backup (or a new ledger) does not know the erasures and requests made after it:
        # the journal and the ledger it replaces do.
        erasures = restore_union(db, journal, replaced, now=now, actor=how.actor, command=command)
        run.details.update(result.as_dict())
    return result, erasures
