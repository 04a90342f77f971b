"""The retention sweep's last step: delete the Zendesk end-user profile of a visitor whose
tickets have all expired, once no ticket at all names them.

snapzen creates the profile (name, email) through each import's requester; expiring the
tickets leaves it behind, holding the person past their retention. The sweep therefore:

1. reads each due ticket's requester id (``tickets/show_many``) *before* deleting it: a
   deleted ticket no longer shows it;
2. after the batches, for each requester whose ticket was deleted: ``GET users/{id}``; only
   an ``end-user`` is considered (agents and admins are never deleted), and only when no
   ticket names them (``users/{id}/tickets/requested``, ``ccd`` and a ``submitter:`` search
   with the tickets of the last minutes it has not indexed yet, read once for the whole sweep:
   a ticket of another channel, a younger chat's ticket, one under a legal hold): otherwise
   the profile is kept and counted, and the next sweep that expires their last ticket
   deletes it;
3. deletes it as the Art. 17 erasure does (``snapzen.clients.user_erasure``: soft delete then
   permanent delete; 404 is "already done").

Only counts reach the run record and the output; user ids are printed in a dry run (ids are
not personal data on their own) but no email or name is ever kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from snapzen.clients.user_erasure import END_USER, delete_profile
from snapzen.commands.clients import zendesk_from
from snapzen.support.errors import SnapzenError
from snapzen.support.log import get_logger

if TYPE_CHECKING:
    from snapzen.commands.retention import SweepResult
    from snapzen.support.settings import Settings

log = get_logger("snapzen.commands.retention_profiles")


class ProfileApi(Protocol):
    """The part of ``snapzen.clients.zendesk.ZendeskClient`` this step needs."""

    def ticket_requesters(self, ticket_ids: Sequence[int]) -> dict[int, int]: ...

    def show_user(self, user_id: int) -> dict[str, Any] | None: ...

    def user_ticket_ids(self, user_id: int) -> list[int]: ...

    def delete_user(self, user_id: int) -> None: ...

    def purge_deleted_user(self, user_id: int) -> None: ...


@dataclass
class ProfileSweep:
    """What the step did (or, in a dry run, would do); user ids stay in memory only."""

    deleted: list[int] = field(default_factory=list)  # or, in a dry run, would delete
    kept: dict[int, list[int]] = field(default_factory=dict)  # user id -> tickets naming them
    failed: dict[int, str] = field(default_factory=dict)


def delete_ticketless(
    zendesk: ProfileApi,
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
            continue
        if dry_run:
            result.deleted.append(user_id)
            continue
        reason = delete_profile(zendesk, user_id, SnapzenError)
        if reason is None:
            result.deleted.append(user_id)
        else:
            result.failed[user_id] = reason
            log.warning("retention_profile_not_deleted", user_id=user_id, reason=reason)
    return result


# ---------------------------------------------------------------- the sweep's two calls


def sweep_profiles(api: ProfileApi, result: SweepResult) -> None:
    """After the batches: delete the profiles of the requesters of the tickets just deleted
    that no ticket names any more (counts into ``result``)."""
    done = delete_ticketless(api, result.requesters, dry_run=False)
    result.users_deleted += len(done.deleted)
    result.users_kept += len(done.kept)
    result.users_failed += len(done.failed)
    log.info(
        "retention_profiles", deleted=len(done.deleted), kept=len(done.kept),
        failed=len(done.failed),
    )  # fmt: skip


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
    return result
