"""Retention sweep: delete the Zendesk tickets whose retention has ended and record each one.

Every ticket snapzen created (restricted transfer or not) is kept for
``transfer.retention_years`` counted from the chat start (``transform.retention_until``, the
same rule as the ``expires_YYYY_MM`` tag). Zendesk deletion schedules cannot express that
(they act only on archived tickets and restart on every edit), so the sweep is driven by
snapzen's own records:

1. **Plan** from the ``cases`` table (synced, ticket id known, ``expired_at`` NULL, retention
   ended on or before ``as_of``), oldest first, a page at a time. No Zendesk search.
2. **Delete** each batch (≤100 ids) through ``snapzen.clients.deletion`` (shared with the
   Art. 17 erasure): ``DELETE tickets/destroy_many``, then wait for the job. Deleted now, or
   already gone (a 404 for the batch is split until the missing ids are isolated; a per-item
   ``NotFound`` or ``AlreadyDeleted`` result) → done. A failed or unfinished job, or any other
   per-item error → not done, retried by the next sweep (exit 3).
3. **Purge** (optional): ``DELETE deleted_tickets/destroy_many`` for the tickets in Zendesk's
   trash, instead of waiting out its 30-day scrub. Best effort: a failure is recorded as
   ``purged: false`` (exit 3) because the ticket is deleted either way.
4. **Record** per batch, in ONE transaction: an ``expired`` ledger event per ticket and
   ``cases.expired_at``. Only after Zendesk confirmed, so the ledger never claims a deletion
   that did not happen.

Rerun and interrupt safety: a case is only skipped once ``expired_at`` is set, and that is
written in the same transaction as its ledger event, so no ticket gets two events and none is
forgotten. An interruption after Zendesk deleted a batch but before the record means the next
sweep sends the ids again, Zendesk answers "not found", which counts as done, and the event is
written then (``already_gone: true``). A ticket erased earlier (Art. 17, ``erased`` event) is
only marked, not deleted or recorded again.

Ledger events carry ids, dates and flags only: never the email, name or transcript.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.clients.deletion import MAX_BATCH, BulkTicketDeleter, DeletionOutcome
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands.clients import ticket_deleter_from, zendesk_from
from snapzen.commands.clock_guard import check_against_zendesk
from snapzen.commands.retention_forget import forget_due, plan_forget, plan_profiles, sweep_profiles
from snapzen.commands.run import Run, locked_run
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event, decision
from snapzen.ledger.rights import holds
from snapzen.ledger.store import queries, transitions
from snapzen.ledger.store.cursor_rules import deletion_clock_error
from snapzen.ledger.store.db import open_ledger, transaction
from snapzen.policy.transform import EXTERNAL_ID_PREFIX, add_years, external_id, retention_until
from snapzen.support import clock as wall_clock
from snapzen.support.errors import ConfigError
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.retention")

RUN_KIND = "retention"

CrashHook = Callable[[str], None]
# ---------------------------------------------------------------- pure rules


def latest_due_day(as_of: date, years: int) -> date:
    """The latest chat day that can be due by ``as_of``: a cheap SQL pre-filter.

    One day past ``as_of`` minus ``years`` because a chat on 29 February is due on 28 February
    ``years`` later; ``iter_due`` then decides exactly."""
    return add_years(as_of, -years) + timedelta(days=1)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class DueTicket:
    """One case whose ticket is due for deletion (ids and dates only)."""

    case_id: str
    ticket_id: int
    widget_id: str | None = None
    subject_ref: str | None = None
    started_at: str = ""
    retention_until: str | None = None
    recorded: bool = False  # retention_until is the one its transfer recorded (not recomputed)
    tag: str | None = None  # --reconcile: found by its expires_ tag, unknown to the ledger


@dataclass
class SweepResult:
    as_of: date
    dry_run: bool
    purge: bool
    run_id: str | None = None
    due: int = 0  # tickets due for deletion (planned, in a dry run)
    deleted: int = 0  # deleted by this sweep
    already_gone: int = 0  # Zendesk no longer had them: counted as done
    purged: int = 0
    purge_failed: int = 0
    failed: int = 0  # not confirmed deleted: the next sweep tries again
    recorded: int = 0  # `expired` ledger events appended
    previously_erased: int = 0  # deleted by an Art. 17 erasure before: only marked
    held: int = 0  # due but under a legal hold (snapzen ledger hold): kept
    batches: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # case_id, ticket_id, reason
    planned: list[DueTicket] = field(default_factory=list)  # dry run only (first 1000)
    reconciled: dict[str, int] | None = None  # --reconcile: its counts (see _reconcile)
    # Zendesk end-user profiles no ticket names any more (retention_forget): deleted, or
    # (dry run) would be; kept because a ticket still names them; not deleted after an error.
    users_deleted: int = 0
    users_kept: int = 0
    users_failed: int = 0
    users_planned: list[int] = field(default_factory=list)  # dry run: user ids to delete
    users_checked: bool = True  # False: a dry run that could not ask Zendesk about them all
    # Months forgotten (retention_forget): {period, cases_forgotten, ...}; dry run {period, cases}
    forgotten: list[dict[str, Any]] = field(default_factory=list)
    requesters: set[int] = field(default_factory=set, repr=False)  # in memory only

    @property
    def exit_code(self) -> int:
        return 3 if (self.failed or self.purge_failed or self.users_failed) else 0

    def counts(self) -> dict[str, int]:
        """The counters (every int field, in order)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("requesters")
        for due in data["planned"]:  # a dry run plans from the ledger: never a --reconcile tag
            due.pop("tag")
        data["as_of"] = self.as_of.isoformat()
        data["exit_code"] = self.exit_code
        return data


# ---------------------------------------------------------------- planning


def iter_due(
    db: sqlite_utils.Database, as_of: date, years: int, page_size: int = 500
) -> Iterator[DueTicket]:
    """Synced cases with a ticket whose retention ended by ``as_of``, oldest first.

    A restricted transfer is due on the ``retention_until`` its ledger row recorded (what the
    person was told, and the ticket's ``expires_YYYY_MM`` tag), whatever ``retention_years``
    says today; other chats on ``retention_years`` counted from the chat start.
    Keyset-paged so a first sweep over years of chats never holds them all in memory, and so
    cases that fail this sweep (still unexpired) are not read again."""
    cutoff = latest_due_day(as_of, years).isoformat()
    last: tuple[str, str] = ("", "")
    while True:
        rows = queries.due_page(db.conn, cutoff, as_of.isoformat(), last, page_size)
        if not rows:
            return
        for case_id, ticket_id, widget_id, subject, started, recorded in rows:
            moment = wall_clock.parse(str(started))
            until = (
                date.fromisoformat(str(recorded)[:10])
                if recorded
                else retention_until(moment, years)
            )
            if until <= as_of:
                yield DueTicket(
                    case_id=str(case_id),
                    ticket_id=int(ticket_id),
                    widget_id=str(widget_id),
                    subject_ref=subject,
                    started_at=str(started),
                    retention_until=until.isoformat(),
                    recorded=recorded is not None,
                )
        last = (str(rows[-1][4]), str(rows[-1][0]))


# ---------------------------------------------------------------- --reconcile


def expired_tags(as_of: date, months_back: int) -> list[str]:
    """Tags of the ``months_back`` whole months before ``as_of``'s month, newest first."""
    this = as_of.year * 12 + as_of.month - 1  # months since January of year 0
    return [
        f"expires_{m // 12:04d}_{m % 12 + 1:02d}"
        for m in range(this - 1, this - 1 - months_back, -1)
    ]


def refuse_on_wrong_clock(settings: Settings, now: datetime) -> None:
    """ConfigError when the clock is beyond the newest time seen by more than the margin."""
    if not Path(settings.ledger.path).exists():
        return
    # The newest run start (syncs run every few minutes, each recording its start), not the
    # newest chat: a widget that stopped chatting still has tickets to expire for years. A
    # second check only: snapzen wrote these rows, so they prove nothing about the clock; the
    # guard is Zendesk's ``Date`` (clock_guard), and a pass under a clock ahead of it records
    # no run.
    with closing(open_ledger(settings.ledger, read_only=True)) as db:
        newest = wall_clock.parse_optional(queries.newest_run_start(db.conn))
    margin = timedelta(days=settings.transfer.clock_margin_days)
    why = deletion_clock_error(now, newest, margin)
    if why:
        raise ConfigError(why)


def run_sweep(
    settings: Settings,
    *,
    as_of: date | None = None,
    dry_run: bool = False,
    purge: bool | None = None,
    actor: str | None = None,
    wait: bool = False,
    clock: Callable[[], datetime] = wall_clock.now,
    crash_hook: CrashHook | None = None,
    reconcile: bool = False,
    reconcile_months: int = 36,
) -> SweepResult:
    """Delete every ticket whose retention ended by ``as_of`` (default today, UTC).

    ``purge`` None means ``settings.transfer.purge_on_expiry``. A dry run only plans: no lock,
    no writes; it reads Zendesk only to say which end-user profiles the sweep would delete
    (retention_forget). Raises ConfigError (bad as_of, missing Zendesk settings), LockHeld
    (another writer), or a FatalError after the ``runs`` row says 'aborted'; batches recorded
    before an abort stay recorded.
    """
    today = clock().astimezone(UTC).date()
    as_of = as_of or today
    purge = settings.transfer.purge_on_expiry if purge is None else purge
    years = settings.transfer.retention_years
    try:
        latest_due_day(as_of, years)
    except (ValueError, OverflowError):
        # 0001-01-01 minus the retention years is before year 1: one line, not a traceback.
        raise ConfigError(f"--as-of {as_of.isoformat()} is out of range") from None
    result = SweepResult(as_of=as_of, dry_run=dry_run, purge=purge)
    if as_of > today and not dry_run:
        # Looking ahead is for planning; deleting a ticket before its retention ends is not
        # something a typo should be able to do.
        raise ConfigError(f"--as-of {as_of.isoformat()} is in the future; only --dry-run may")
    if dry_run:
        return plan_profiles(settings, _plan_only(settings, result, years))
    api = zendesk_from(settings)
    # The clock decides what is due: checked against Zendesk's own (a fresh GET users/me and
    # its Date header) before anything is planned, then against the ledger's newest run.
    check_against_zendesk(api, clock, action="delete", need_evidence=True)
    refuse_on_wrong_clock(settings, clock())
    actor = actor or settings.pipeline.actor
    details = {"as_of": as_of.isoformat(), "purge": purge}
    with locked_run(settings, RUN_KIND, actor, wait=wait, now=clock, details=details) as run:
        result.run_id = run.run_id
        hook = crash_hook or (lambda _point: None)
        sweep = _Sweep(run, api, ticket_deleter_from(settings, api), result, years, hook)
        run.counts = lambda: {"fetched": result.due, "failed": result.failed}
        run.facts = lambda: {**result.counts(), "failures": result.failures[:50]}
        log.info("retention_sweep_started", as_of=as_of.isoformat(), purge=purge)
        sweep.delete_due(min(settings.zendesk.batch_size, MAX_BATCH))
        if reconcile:
            sweep.reconcile(reconcile_months)
        sweep_profiles(api, result)
        result.forgotten = forget_due(
            run.db,
            settings,
            as_of=as_of,
            now=clock(),
            actor=actor,
            run_id=run.run_id,
            hook=sweep.hook,
        )
        run.exit_code = result.exit_code
    return result


def _plan_only(settings: Settings, result: SweepResult, years: int) -> SweepResult:
    # Read-only and without the lock: a dry run may look while a sync writes (WAL).
    with closing(open_ledger(settings.ledger, read_only=True)) as db:
        active = holds.active(db.conn)
        due_ids: set[str] = set()
        for due in iter_due(db, result.as_of, years):
            if active.held(case_id=due.case_id, ticket_id=due.ticket_id, subject=due.subject_ref):
                result.held += 1
                continue
            result.due += 1
            due_ids.add(due.case_id)
            if len(result.planned) < 1000:
                result.planned.append(due)
        result.forgotten = plan_forget(db.conn, settings, result.as_of, active, due_ids)
    return result


# ---------------------------------------------------------------- the sweep


@dataclass
class _Sweep:
    """One sweep under the writer lock: what it deletes with, and what it counts into."""

    run: Run  # its ledger, id, actor and clock
    api: ZendeskClient
    deleter: BulkTicketDeleter
    result: SweepResult
    years: int
    hook: CrashHook

    def delete_due(self, size: int) -> None:
        """Every due ticket, ``size`` at a time: held ones kept, those the ledger records as
        deleted only marked, the others deleted and recorded batch by batch."""
        result = self.result
        active = holds.active(self.run.db.conn)  # a legal hold keeps a due ticket (Art. 17(3)(e))
        due = iter_due(self.run.db, result.as_of, self.years)
        while batch := list(itertools.islice(due, size)):
            result.due += len(batch)
            held = [
                d
                for d in batch
                if active.held(case_id=d.case_id, ticket_id=d.ticket_id, subject=d.subject_ref)
            ]
            result.held += len(held)
            batch = [d for d in batch if d not in held]
            # Tickets the ledger already records as deleted (an Art. 17 erasure; or an
            # `expired` event, which cannot lack expired_at: then marking is all that is left).
            earlier = queries.deleted_tickets(self.run.db.conn, [d.ticket_id for d in batch])
            marked_only = [d for d in batch if d.ticket_id in earlier]
            to_delete = [d for d in batch if d.ticket_id not in earlier]
            result.previously_erased += sum(earlier.get(d.ticket_id) == "erased" for d in batch)
            done = self._delete(to_delete)
            self.hook("after_delete")
            result.recorded += self._record(done, marked_only)
            self._count(done)
            log.info(
                "retention_batch", tickets=len(to_delete), done=len(done), recorded=result.recorded
            )

    def _delete(self, due: list[DueTicket]) -> list[tuple[DueTicket, DeletionOutcome]]:
        """Delete ``due``'s tickets, each only if it still carries its own case's external_id;
        the ones gone (a failure is counted and logged). Their requesters are read first."""
        ids = list(dict.fromkeys(d.ticket_id for d in due))
        if not ids:
            return []
        self.result.batches += 1
        expected = {d.ticket_id: external_id(d.case_id) for d in due}
        requester_of = self.api.ticket_requesters(ids)  # before they are gone
        outcomes = self.deleter.delete(ids, purge=self.result.purge, expected=expected)
        gone = [t for t in ids if outcomes[t].gone]
        self.result.requesters.update(requester_of[t] for t in gone if t in requester_of)
        done = []
        for d in due:
            outcome = outcomes[d.ticket_id]
            if outcome.gone:
                done.append((d, outcome))
                continue
            failure = {"case_id": d.case_id, "ticket_id": d.ticket_id, "reason": outcome.reason}
            self.result.failed += 1
            self.result.failures.append(failure)
            log.warning("retention_delete_failed", **failure)
        return done

    def _count(self, done: Sequence[tuple[DueTicket, DeletionOutcome]]) -> None:
        """Count a batch's tickets gone once it is recorded: a sweep stopped between Zendesk's
        deletion and the record counts none of them, and the rerun that records them counts
        them (already gone), so the runs rows count each ticket once."""
        result = self.result
        for _, outcome in done:
            result.already_gone += outcome.already_gone
            result.deleted += not outcome.already_gone
            result.purged += result.purge and outcome.purged
            result.purge_failed += result.purge and not outcome.purged and not outcome.already_gone

    def _record(
        self,
        items: Sequence[tuple[DueTicket, DeletionOutcome]],
        marked_only: Sequence[DueTicket] = (),
    ) -> int:
        """One transaction: an `expired` event per ticket gone (and, for a case,
        `expired_at`). Returns the events appended."""
        stamp = wall_clock.format(self.run.now())
        appended = 0
        with transaction(self.run.db) as conn:
            for due, outcome in items:
                details: dict[str, Any] = {
                    "purged": outcome.purged,
                    "already_gone": outcome.already_gone,
                }
                if due.tag is not None:  # found by its tag: no case of the ledger to mark
                    details.update(reconciled=True, tag=due.tag)
                elif not transitions.mark_expired(conn, due.case_id, stamp):
                    continue  # recorded already; never a second event
                else:
                    transfer = queries.transfer_seq(conn, due.case_id)
                    details.update(
                        retention_years=self.years,
                        retention_source="recorded" if due.recorded else "configured",
                        started_on=due.started_at[:10],
                        restricted_transfer=transfer is not None,
                        transfer_seq=transfer,
                    )
                    if self.result.purge:
                        details["purge"] = outcome.purge_status
                expired = decision(
                    Event.EXPIRED,
                    due.case_id,
                    stamp,
                    details=details,
                    widget_id=due.widget_id,
                    subject_ref=due.subject_ref,
                    ticket_id=due.ticket_id,
                    retention_until=due.retention_until,
                    run_id=self.run.run_id,
                    actor=self.run.actor,
                )
                append_events(conn, [expired])
                appended += 1
            for due in marked_only:
                transitions.mark_expired(conn, due.case_id, stamp)
        return appended

    def reconcile(self, months_back: int) -> None:
        """``--reconcile``: expired tickets Zendesk holds that the ledger does not know.

        Every ticket snapzen creates carries ``expires_YYYY_MM`` (the month its retention
        ends), so a ticket whose month is over is due even when the ledger lost it (a restore
        from an old backup, a database started afresh, a second installation). Search finds
        them, archived ones included; tickets the ledger knows are left to ``delete_due``,
        which decides on their recorded ``retention_until``; the current month is never
        searched (the tag does not say which day in it the retention ends). Search lags
        writes by minutes: a ticket with an ``erased``/``expired`` event is skipped. Holds
        apply. Each ticket deleted gets an ``expired`` event with ``details.reconciled`` and
        its tag; the counts go to ``result.reconciled`` (months, found, deleted, already_gone,
        held, failed), failures and holds to the sweep's own too.

        Each month is read whole, never cut short: ``GET /search`` stops at 1,000 results a
        query, and a month with more (a lost database of a busy account) would be deleted
        1,000 at a time with ``found`` claiming that was all. An operator running a repair
        wants it done in one run and counted truly, not a partial exit to rerun until it
        stops; so the search export (cursor-paged, no cap, 1,000 tickets a request) reads
        each month, and ``search/count`` (search's own budget, not paced) first skips the
        months holding none, which most are: the export's 100 requests a minute, shared with
        ``init`` and ``ledger reconcile``, are spent only where there is something to read
        (36 empty months cost 36 counts, not 22 s of paced export requests)."""
        counts = dict.fromkeys(("months", "found", "deleted", "already_gone", "held", "failed"), 0)
        active = holds.active(self.run.db.conn)
        found: dict[int, DueTicket] = {}
        for tag in expired_tags(self.result.as_of, months_back):
            counts["months"] += 1
            query = f"type:ticket tags:{tag}"
            if not self.api.search_count(query):
                continue
            for ticket in itertools.chain.from_iterable(self.api.search_export(query)):
                ticket_id = ticket.get("id")
                if not isinstance(ticket_id, int) or ticket_id in found:
                    continue
                if tag not in (ticket.get("tags") or []):
                    continue
                if not queries.ticket_unknown(self.run.db.conn, ticket_id):
                    continue
                external = ticket.get("external_id")
                case_id = str(external).removeprefix(EXTERNAL_ID_PREFIX) if external else None
                if active.held(ticket_id=ticket_id, case_id=case_id):
                    counts["held"] += 1
                    continue
                found[ticket_id] = DueTicket(case_id or f"ticket:{ticket_id}", ticket_id, tag=tag)
        counts["found"] = len(found)
        due = list(found.values())
        for start in range(0, len(due), MAX_BATCH):
            batch = due[start : start + MAX_BATCH]
            outcomes = self.deleter.delete([d.ticket_id for d in batch], purge=self.result.purge)
            for outcome in outcomes.values():
                gone = "already_gone" if outcome.already_gone else "deleted"
                counts[gone if outcome.gone else "failed"] += 1
            self._record([(d, outcomes[d.ticket_id]) for d in batch if outcomes[d.ticket_id].gone])
        self.result.reconciled = counts
        self.result.failed += counts["failed"]
        self.result.held += counts["held"]
        log.info("retention_reconciled", **counts)
