"""Art. 17 erasure of one data subject: delete their Zendesk tickets, then record it.

The ledger is append-only, so erasure never edits a transfer row: each deleted ticket gets a
new ``erased`` event (same subject_ref, case_id, ticket_id; ``details.transfer_seq`` points at
the original transfer). The chain stays valid and no email is stored, only its HMAC.

Order matters: tickets are deleted first and recorded after, so the ledger never claims an
erasure that did not happen. If recording fails after a deletion, a rerun finds the ticket
already gone (counted as deleted) and records it then; already-erased tickets are skipped.

Chats of the same person that were not restricted transfers (visitor outside the EEA/UK)
have no transfer row; they are found through ``cases.subject_ref`` (the same HMAC, stored when
the case was pushed) and get an ``erased`` event too, with ``transfer_seq`` null.

Optionally (``users``, the CLI's ``--delete-user``) the person's Zendesk end-user profile is
deleted too, but only once every one of their tickets is gone: a profile deleted while a
ticket remains (or is being sent) would be recreated or orphan that ticket. It is found by
email search and, since search indexes a new profile minutes late, through the requesters of
the person's tickets, read before they are deleted. The run row then counts the profiles
deleted; user ids and emails are not stored. The eraser comes bound to the person's email
(``snapzen.clients.deletion.ZendeskUserEraser``): this module never sees the address.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.clients.deletion import (
    MAX_BATCH,
    DeletionOutcome,
    Requesters,
    TicketDeleter,
    UserErasure,
    ZendeskUserEraser,
)
from snapzen.commands.erase_request import RequestInfo, chain_request
from snapzen.commands.restore_swap import crash_point
from snapzen.commands.run import Run, recorded_run
from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event, decision
from snapzen.ledger.rights import collisions, erasure_journal, holds, period_keys
from snapzen.ledger.rights.notices import Notice
from snapzen.ledger.store import transitions
from snapzen.ledger.store.case_status import UNSENT_OR_PUSHING, CaseStatus, sql_list
from snapzen.ledger.store.db import transaction
from snapzen.policy.transform import external_id
from snapzen.support import clock
from snapzen.support.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class TicketTarget:
    ticket_id: int
    case_id: str
    widget_id: str | None
    recipient: str | None
    destination_country: str | None
    transfer_seq: int | None  # None: not a restricted transfer, found through `cases`


@dataclass
class ErasurePlan:
    subject_ref: str
    transfers: int = 0
    to_delete: list[TicketTarget] = field(default_factory=list)
    already_erased: list[int] = field(default_factory=list)  # erased or expired before
    without_ticket: list[str] = field(default_factory=list)  # case ids with no ticket id
    unsent: list[str] = field(default_factory=list)  # pending/failed: withheld by the erasure
    in_flight: list[str] = field(default_factory=list)  # pushing: erase again after a sync
    held: list[int] = field(default_factory=list)  # under a legal hold: kept (Art. 17(3)(e))
    subject_held: bool = False  # the whole person is held: nothing deleted or withheld


@dataclass
class ErasureResult:
    plan: ErasurePlan
    dry_run: bool
    deleted: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # What the deleter said per ticket id (the retention sweep reads the same shape).
    outcomes: dict[int, DeletionOutcome] = field(default_factory=dict)
    event_seqs: list[int] = field(default_factory=list)
    run_id: str | None = None
    aborted: bool = False  # the deleter raised; what was deleted before is still recorded
    # Only with a ZendeskUserEraser: the lookup (dry run) or what was deleted; None when skipped.
    users: UserErasure | None = None
    users_requested: bool = False
    # The Art. 19 notices chained with the erasure (erase_request.chain_request), with seq.
    notices: list[Notice] | None = None

    @property
    def tickets_complete(self) -> bool:
        return not self.failed and not self.aborted

    @property
    def partial(self) -> bool:
        """Not complete, or a chat was being sent: the request stays open (exit 3), rerun."""
        return not self.complete or bool(self.plan.in_flight)

    @property
    def complete(self) -> bool:
        # Asked for but skipped (tickets left) counts as not done: the rerun finishes it.
        users_done = self.users is not None and self.users.complete
        return self.tickets_complete and (not self.users_requested or self.dry_run or users_done)


def plan_erasure(
    db: sqlite_utils.Database, subject_ref: str, only_cases: Collection[str] | None = None
) -> ErasurePlan:
    """What erasing this subject would delete (uses the subject_ref index); with
    ``only_cases``, only those chats of the subject (a reference shared by several people)."""
    plan = ErasurePlan(subject_ref=subject_ref)
    done: set[int] = set()
    targets: dict[int, TicketTarget] = {}
    chained, params = period_keys.match(db.conn, subject_ref)  # every period not forgotten
    rows = db.conn.execute(
        f"""SELECT event, case_id, widget_id, recipient, destination_country, ticket_id, seq
           FROM events WHERE {chained} AND event IN (?, ?, ?) ORDER BY seq""",
        [*params, Event.TRANSFER, Event.ERASED, Event.EXPIRED],
    ).fetchall()
    # Tickets of this person that were not restricted transfers: only `cases` knows them.
    rows += db.conn.execute(
        """SELECT CASE WHEN expired_at IS NULL THEN 'cases' ELSE 'cases_expired' END, case_id,
               widget_id, NULL, NULL, ticket_id, NULL
           FROM cases WHERE subject_ref = ? AND ticket_id IS NOT NULL ORDER BY ticket_id""",
        (subject_ref,),
    ).fetchall()
    for event, case_id, widget_id, recipient, destination, ticket_id, seq in rows:
        if only_cases is not None and str(case_id) not in only_cases:
            continue  # other people's chats
        if event in (Event.ERASED, Event.EXPIRED):
            done.update([int(ticket_id)] if ticket_id is not None else [])
            continue
        if event == Event.TRANSFER:
            plan.transfers += 1
            if ticket_id is None:
                plan.without_ticket.append(str(case_id))
                continue
        elif int(ticket_id) in targets:
            continue
        elif event == "cases_expired":
            done.add(int(ticket_id))
        target = TicketTarget(int(ticket_id), str(case_id), widget_id, recipient, destination, seq)
        targets.setdefault(target.ticket_id, target)
    plan.to_delete = [t for tid, t in targets.items() if tid not in done]
    # Chats of this person not sent yet: the erasure must stop them from ever being sent.
    for case_id, status in db.conn.execute(
        f"""SELECT case_id, status FROM cases WHERE subject_ref = ?
           AND status IN {sql_list(UNSENT_OR_PUSHING)} ORDER BY case_id""",
        (subject_ref,),
    ):
        if only_cases is None or case_id in only_cases:
            (plan.in_flight if status == CaseStatus.PUSHING else plan.unsent).append(str(case_id))
    plan.already_erased = sorted(done & set(targets))
    return plan


def erase_subject(
    db: sqlite_utils.Database,
    subject_ref: str,
    deleter: TicketDeleter | None,
    *,
    dry_run: bool = False,
    lock: AbstractContextManager[Any] | None = None,
    actor: str = "cli",
    reason: str = "art17_request",
    now: datetime | None = None,
    users: ZendeskUserEraser | None = None,
    request: RequestInfo | None = None,
    only_cases: Collection[str] | None = None,
) -> ErasureResult:
    """Delete the subject's tickets (≤100 per call) and append one erased event per ticket;
    with ``users``, then delete their Zendesk end-user profile (see the module docstring).

    ``lock`` is the writer lock (snapzen.support.lock.writer_lock) so erasure never interleaves with
    a sync appending to the same chain; planning happens inside it so the plan is current.
    Tickets under a legal hold (snapzen.ledger.rights.holds) are kept and listed in ``plan.held``.
    With ``request`` the erasure is journalled (erase_request): a ``request`` event with its
    Art. 12(3) deadline and outcome, even when nothing was found, and a line in the erasure
    journal kept outside the database (so a restored backup can re-apply it).

    A reference used by several people (collisions.SubjectCollision, exit 2) is refused
    unless ``only_cases`` names the chats to erase: nothing is deleted or withheld then.
    """
    with lock if lock is not None else nullcontext():
        if request is not None and not dry_run:
            # An edited journal (JournalDamaged, exit 2) is refused before any deletion; an
            # old-format one is migrated once, vouched for by this ledger's own erasures.
            erasure_journal.prepare(request.journal, request.journal_key, db.conn)
        if only_cases is None:
            collisions.select_cases(db.conn, subject_ref)  # raises on a shared reference
        plan = plan_erasure(db, subject_ref, only_cases)
        _apply_holds(db, plan)
        result = ErasureResult(plan=plan, dry_run=dry_run, users_requested=users is not None)
        if dry_run:
            if users is not None:
                result.users = users.plan(users.requesters(known_tickets(plan)))
            return result
        if plan.unsent:  # pending or failed chats of an erased person: never sent
            with transaction(db) as conn:
                stamp = clock.format(now or clock.now())
                transitions.withhold_for_erasure(conn, plan.unsent, stamp)
        if plan.to_delete and deleter is None:
            raise ValueError("a TicketDeleter is required unless dry_run")
        with recorded_run(db, "erase", actor, now=clock.reader(now), lazy=True) as run:
            try:
                # Read before any deletion: a deleted ticket no longer shows its requester.
                requesters = (
                    users.requesters(known_tickets(plan))
                    if users is not None and not plan.in_flight
                    else Requesters()
                )
                if deleter is not None:
                    _delete_tickets(deleter, plan.to_delete, result)
                # Only when every ticket is gone and none is being sent right now (see above).
                if users is not None and result.tickets_complete and not plan.in_flight:
                    result.users = users.erase(requesters)
            except BaseException:
                result.aborted = True
                raise
            finally:
                # Record whatever was deleted even if a later step raised: those are gone.
                # One transaction: the erased events, the request and its Art. 19 notices are
                # all in the ledger or none is (a rerun finds the tickets gone, records them).
                touched = result.deleted or (result.users is not None and result.users.touched)
                lines = None
                if touched:
                    run.begin()
                    result.run_id = run.run_id
                if touched or request is not None:
                    with transaction(db) as conn:
                        if touched:
                            _record(conn, run, result, reason)
                        if request is not None:
                            lines = chain_request(
                                conn,
                                request,
                                result,
                                actor=actor,
                                reason=reason,
                                now=now,
                                only_cases=only_cases,
                            )
                if request is not None and lines is not None:
                    # After the commit: the erasure, its request and notices in the journal.
                    # Killed here, the next writer's erasure_journal.prepare (or a checkpoint,
                    # or `ledger reapply-erasures`) appends them (erasure_journal.catch_up).
                    crash_point("erase_committed")
                    erasure_journal.append(request.journal, request.journal_key, lines)
        return result


def known_tickets(plan: ErasurePlan) -> list[int]:
    """The person's tickets the ledger knows: to delete, held, or erased before (a rerun
    minutes after a run that stopped before the profile: the lag window still shows them)."""
    return sorted({t.ticket_id for t in plan.to_delete} | set(plan.held) | set(plan.already_erased))


def _apply_holds(db: sqlite_utils.Database, plan: ErasurePlan) -> None:
    """Held tickets stay; a held person keeps everything, unsent chats included."""
    active = holds.active(db.conn)
    held = plan.subject_held = active.held(subject=plan.subject_ref)
    kept = [
        t for t in plan.to_delete if held or active.held(case_id=t.case_id, ticket_id=t.ticket_id)
    ]
    plan.held = [t.ticket_id for t in kept]
    plan.to_delete = [t for t in plan.to_delete if t not in kept]
    plan.unsent = [c for c in plan.unsent if not held and c not in active.named("case")]


def _delete_tickets(
    deleter: TicketDeleter, targets: list[TicketTarget], result: ErasureResult
) -> None:
    """Erasure wants no copy left, so it always asks for the purge too; that stays best effort
    (Zendesk scrubs its trash within 30 days anyway), so only ``gone`` (deleted now or already
    gone: no live ticket either way, which is what Art. 17 requires) decides."""
    for start in range(0, len(targets), MAX_BATCH):
        expected = {t.ticket_id: external_id(t.case_id) for t in targets[start : start + MAX_BATCH]}
        outcomes = deleter.delete(list(expected), purge=True, expected=expected)
        for ticket_id in expected:
            outcome = outcomes.get(ticket_id, DeletionOutcome(reason="no outcome reported"))
            result.outcomes[ticket_id] = outcome
            (result.deleted if outcome.gone else result.failed).append(ticket_id)
            if not outcome.gone:  # the CLI reports only the ids; the reason is for a rerun
                log.warning(
                    "ledger.erase.delete_failed", ticket_id=ticket_id, reason=outcome.reason
                )


def _record(conn: sqlite3.Connection, run: Run, result: ErasureResult, reason: str) -> None:
    """One erased event per deleted ticket, in the erase run, inside the caller's transaction."""
    stamp = clock.format(run.now())
    by_id = {target.ticket_id: target for target in result.plan.to_delete}
    erased = [
        decision(
            Event.ERASED,
            target.case_id,
            stamp,
            details={"reason": reason, "ticket_deleted": True, "transfer_seq": target.transfer_seq},
            subject_ref=result.plan.subject_ref,
            run_id=run.run_id,
            actor=run.actor,
            **{k: v for k, v in asdict(target).items() if k not in ("case_id", "transfer_seq")},
        )
        for target in (by_id[ticket_id] for ticket_id in result.deleted)
    ]
    result.event_seqs += [int(row["seq"]) for row in append_events(conn, erased)]
    complete = result.complete
    run.outcome = "ok" if complete else ("aborted" if result.aborted else "partial")
    run.exit_code = 0 if complete else 3
    run.details = _run_details(result, len(erased))


def _run_details(result: ErasureResult, erased: int) -> dict[str, int]:
    details = {"erased": erased, "failed": len(result.failed)}
    users = result.users  # counts only: user ids and emails stay out of the ledger
    if result.users_requested:
        details["zendesk_users_deleted"] = len(users.deleted) if users else 0
        details["zendesk_users_not_deleted"] = (
            len(users.refused) + len(users.failed) if users else 0
        )
    if users is not None and users.blocked:
        details["zendesk_users_kept"] = len(users.blocked)  # other tickets name them
    if users is not None and users.unconfirmed:
        details["zendesk_users_not_confirmed"] = 1  # none found, but the look-up was blind
    return details
