"""The retention sweep's last steps: delete the end-user profiles its deletions leave
behind, then forget the months whose every ticket has expired, and the request periods whose
evidence has served (``record.request_evidence_years``).

**Profiles.** snapzen creates the Zendesk end-user profile (name, email) through each
import's requester; expiring the tickets leaves it behind, holding the person past their
retention. The sweep therefore:

1. reads each due ticket's requester id (``tickets/show_many``) *before* deleting it: a
   deleted ticket no longer shows it;
2. after the batches, for each requester whose ticket was deleted: ``GET users/{id}``; only
   an ``end-user`` is considered (agents and admins are never deleted), and only when no
   ticket names them (``users/{id}/tickets/requested``, ``ccd`` and a ``submitter:`` search
   with the tickets of the last minutes it has not indexed yet, read once for the whole sweep:
   a ticket of another channel, a younger chat's ticket, one under a legal hold): otherwise
   the profile is kept and counted, and the next sweep that expires their last ticket
   deletes it;
3. deletes it right after that check, as the Art. 17 erasure does
   (``snapzen.clients.deletion``: soft delete then permanent delete; 404 is "already done").

Only counts reach the run record and the output; user ids are printed in a dry run (ids are
not personal data on their own) but no email or name is ever kept.

**Forgetting.** See snapzen.ledger.rights.forget for the month rule and the order of the
steps, and snapzen.ledger.rights.request_periods for the request-period rule. Run under the
writer lock after the sweep's deletions, so a month whose last tickets this sweep deleted is
forgotten in the same sweep; a dry run lists what it would forget (``plan_forget``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from snapzen.clients.deletion import END_USER, delete_profiles
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands import copies
from snapzen.commands.clients import zendesk_from
from snapzen.ledger.rights import erasure_journal, forget, holds, period_keys, request_periods
from snapzen.ledger.store.db import checkpoint_wal, configured_key
from snapzen.support.errors import SnapzenError
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings

if TYPE_CHECKING:
    from snapzen.commands.retention import SweepResult

log = get_logger("snapzen.commands.retention_forget")


# ---------------------------------------------------------------- profiles


@dataclass
class ProfileSweep:
    """What the step did (or, in a dry run, would do); user ids stay in memory only."""

    deleted: list[int] = field(default_factory=list)  # or, in a dry run, would delete
    kept: dict[int, list[int]] = field(default_factory=dict)  # user id -> tickets naming them
    failed: dict[int, str] = field(default_factory=dict)


def delete_ticketless(
    zendesk: ZendeskClient,
    users: Iterable[int],
    *,
    dry_run: bool,
    leaving: Iterable[int] = (),
) -> ProfileSweep:
    """Delete (or, ``dry_run``, list) each end-user no ticket names any more.

    ``leaving``: tickets that do not count as naming anyone (in a dry run, those the sweep
    would delete)."""
    result = ProfileSweep()
    gone = set(leaving)
    for user_id in sorted(set(users)):
        try:
            user = zendesk.show_user(user_id)
            if user is None or user.get("role") != END_USER:
                continue  # already deleted, or staff: never deleted by a sweep
            tickets = [t for t in zendesk.user_ticket_ids(user_id) if t not in gone]
        except SnapzenError as exc:
            # The tickets are deleted and recorded; one unreadable profile stops nothing else.
            result.failed[user_id] = f"lookup failed ({type(exc).__name__})"
            continue
        if tickets:
            result.kept[user_id] = tickets
        elif dry_run:
            result.deleted.append(user_id)
        else:
            # Deleted right after its own check, not after every other profile's (minutes of
            # calls in a large sweep, while a ticket may come to name it; and a sweep stopped
            # meanwhile would have deleted none of those it checked).
            deleted, failed = delete_profiles(zendesk, [user_id], SnapzenError)
            result.deleted += deleted
            result.failed.update(failed)
    return result


# ---------------------------------------------------------------- the sweep's two profile calls


def sweep_profiles(api: ZendeskClient, result: SweepResult) -> None:
    """After the batches: delete the profiles of the requesters of the tickets just deleted
    that no ticket names any more (counts into ``result``)."""
    done = delete_ticketless(api, result.requesters, dry_run=False)
    result.users_deleted += len(done.deleted)
    result.users_kept += len(done.kept)
    result.users_failed += len(done.failed)
    log.info(
        "retention_profiles",
        deleted=len(done.deleted),
        kept=len(done.kept),
        failed=len(done.failed),
    )


def plan_profiles(settings: Settings, result: SweepResult) -> SweepResult:
    """Dry run: which profiles the sweep would delete (Zendesk read-only). Without Zendesk
    settings, or when Zendesk cannot be asked, ``users_checked`` is False."""
    due = [d.ticket_id for d in result.planned]
    if not due:
        return result
    try:
        zendesk = zendesk_from(settings)
        owners = zendesk.ticket_requesters(due)
        planned = delete_ticketless(zendesk, owners.values(), dry_run=True, leaving=due)
    except SnapzenError as exc:
        log.warning("retention_profiles_not_checked", error=type(exc).__name__)
        result.users_checked = False
        return result
    result.users_planned = planned.deleted
    result.users_deleted = len(planned.deleted)
    result.users_kept = len(planned.kept)
    if planned.failed:  # the tickets naming some could not be read: not all checked
        log.warning("retention_profiles_not_checked", users=len(planned.failed))
        result.users_checked = False
    return result


# ---------------------------------------------------------------- forgetting


def plan_forget(
    conn: sqlite3.Connection,
    settings: Settings,
    as_of: Any,
    held: holds.HoldSet,
    due: Collection[str],
) -> list[dict[str, Any]]:
    """The months a sweep as of ``as_of`` would forget, once the ``due`` cases' tickets are
    deleted ([{period, cases}]), then the request periods ([{period, requests}])."""
    months = forget.plan(conn, as_of, settings.transfer.retention_years, held, due)
    return months + request_periods.plan(conn, as_of, rule(settings), held)


def rule(settings: Settings) -> request_periods.Rule:
    """The request-period rule from the settings and the copies register beside the ledger
    (a copy older than an erasure, still at its path, keeps that erasure's record)."""
    made = copies.recorded(settings.ledger.path)
    return request_periods.Rule(
        years=settings.record.request_evidence_years,
        snapengage_days=settings.snapengage.retention_days,
        copies=tuple(request_periods.Copy(c.made_at, Path(c.path).exists()) for c in made),
    )


def describe(item: dict[str, Any], *, planned: bool) -> str:
    """One line for the sweep's output about a period forgotten (or, ``planned``, due)."""
    period, verb = str(item["period"]), "would forget" if planned else "forgot"
    if period_keys.is_request_period(period):
        count = item.get("requests", item.get("requests_forgotten", 0))
        tail = f", {item.get('erasures_forgotten', 0)} erasure record(s) deleted"
        return (
            f"{verb} request period {period}: its key destroyed, the evidence of {count} "
            "request(s) unlinked"
            + (" (answered and past record.request_evidence_years)" if planned else tail)
        )
    cases = item.get("cases", item.get("cases_forgotten", 0))
    tail = " (every ticket of that month has expired)" if planned else ""
    return f"{verb} {period}: subject-reference key destroyed, {cases} case(s) deleted{tail}"


def forget_due(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    as_of: Any,
    now: datetime,
    actor: str,
    run_id: str | None,
    hook: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Finish the months a killed sweep journalled, then forget every month now due.
    Returns each forgotten month's chained details. Nothing without ``ledger.key`` (the
    rights journal that keeps a month forgotten across restores is keyed by it)."""
    key = configured_key(settings.ledger)
    if key is None:
        log.warning("retention_forget_skipped", reason="ledger.key is not set")
        return []
    path = settings.ledger.erasure_journal_path
    journalled = erasure_journal.Contents()
    if path.is_file():  # an edited journal: JournalDamaged (exit 2); an old format: migrated
        journalled = erasure_journal.prepare(path, key, db.conn)
    how = "retention sweep (finished)"
    done = forget.reapply(db, journalled.forgotten, now=now, actor=actor, how=how)
    held = holds.active(db.conn)
    for item in plan_forget(db.conn, settings, as_of, held, ()):
        period = item["period"]
        ids = request_periods.evidence(db.conn, period).request_ids if "requests" in item else ()
        forget.journal(path, key, period, now, ids)
        hook("after_journal")
        done.append(
            forget.forget_period(db, period, now=now, actor=actor, run_id=run_id, hook=hook)
        )
        log.info("retention_period_forgotten", period=period)
    hook("before_compaction")
    if forget.compact_journal(db.conn, path, key, now):  # step 3: no reference kept past it
        # Older journal copies (ledger checkpoint) still hold the lines: name them (paths only).
        older = [
            c.path
            for c in copies.recorded(settings.ledger.path)
            if c.kind == copies.JOURNAL_COPY and Path(c.path).exists()
        ]
        (log.warning if older else log.info)(
            "rights_journal_compacted", older_journal_copies_still_holding=older
        )
    if done:
        # Fold the WAL into the file now, so the destroyed keys' pages (overwritten there:
        # secure_delete) do not linger in the write-ahead log (best effort: a reader may hold it).
        checkpoint_wal(db)
    return done
