"""What snapzen deletes in Zendesk: tickets in bulk, saying per ticket what happened, and a
person's end-user profile.

**Tickets**, shared by the retention sweep (``snapzen.commands.retention``) and the Art. 17 erasure
(``snapzen.commands.erase``), which differ only in what they record afterwards.

1. **Soft delete** with ``DELETE tickets/destroy_many`` (≤100 ids) and wait for the job. A 404
   for the whole call is split until the missing ids stand alone; a missing ticket, like a
   per-item ``NotFound`` or ``AlreadyDeleted`` result, is *already gone*, which is the goal of
   both callers. A failed or unfinished job, a refused call (a ``RecordError``) or any other
   per-item error leaves the ticket not deleted, with a one-line reason; the caller retries.
   Other errors (auth, retries exhausted) propagate: the run cannot go on.
2. **Purge** (optional) with ``DELETE deleted_tickets/destroy_many`` for the tickets Zendesk
   confirmed are in its trash (deleted now, or ``AlreadyDeleted``). Best effort: a failure is
   reported in the outcome, the soft delete still counts, and Zendesk scrubs the trash within
   30 days anyway.

0. **Check** (when the caller names each ticket's case): the tickets are read back with
   ``tickets/show_many`` (one call per 100) and a ticket whose ``external_id`` is not the one
   its case created is never deleted; it is reported (``mismatch``) for a human to look at.
   The ledger's ticket id could be wrong (job results out of step, a restored backup); the
   check keeps a retention sweep or an erasure from deleting someone else's ticket.

**Profiles** (opt-in part of the Art. 17 erasure; the retention sweep's expired profiles).

snapzen creates the profile (name and email) through the import's ``requester``, so erasing
the person's tickets leaves it behind. ``ZendeskUserEraser`` finds it two ways, then
soft-deletes it (``DELETE users/{id}``) and permanently deletes it (``DELETE
deleted_users/{id}``; Zendesk requires the soft delete first, reference §11.2).

Finding it: ``users/search`` by exact email, which indexes a new user only minutes later
(reference §9), so the profile of a chat synced minutes ago is not found that way; hence also
the requesters of the person's tickets (``requesters``: ``tickets/show_many``, read before
they are deleted; for a ticket already deleted, the Incremental Ticket Export of the last
``SEARCH_LAG``, which does not lag: ``snapzen.clients.search_lag``). A ticket deleted longer ago
had its requester created longer ago too, so search shows them. Each requester id is kept only
when ``GET users/{id}`` shows this exact email (case-insensitive, the primary identity): a
requester with another email is not this person's profile (``other_email``: never deleted).

Rules:

- only ``end-user`` profiles are ever deleted: an agent or admin with that address is refused
  and reported (deleting a staff account is never what an erasure request means);
- a profile that any ticket still names (as requester, CC or submitter: tickets of other
  channels, or not deleted yet) is never deleted: it is reported with those ticket ids
  (``blocked``), since deleting it would orphan or rewrite that ticket;
- a 404 on either call is "already done" (deleted by hand, or by an earlier run);
- a refusal (422 or another 4xx) is reported by user id with the error class only, since
  Zendesk may quote the name or email back; auth and transport errors propagate (the run
  cannot go on, as for tickets).

The email is held only in memory: results and messages carry user ids, never the address.

``snapzen.clients.zendesk`` is imported for typing only, so callers can use this module without
importing the sink (tests hand it fakes of the calls it makes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from snapzen.clients.search_lag import has_email, int_field
from snapzen.policy.models import JobResult, JobStatus
from snapzen.support.errors import BadRequestError, NotFoundError, RecordError, SnapzenError
from snapzen.support.log import get_logger, one_line

if TYPE_CHECKING:  # typing only: callers need not import the sink
    from snapzen.clients.zendesk import ZendeskClient

log = get_logger("snapzen.clients.deletion")

MAX_BATCH = 100  # destroy_many and deleted_tickets/destroy_many take at most 100 ids
# Per-item statuses of a destroy job that mean "this ticket no longer exists" (the sandbox
# and Zendesk's bulk job results).
_GONE_STATUSES = frozenset({"notfound", "not_found", "recordnotfound"})
_IN_TRASH_STATUS = "AlreadyDeleted"


class TicketDeleter(Protocol):
    """What the retention sweep and the erasure call: ``BulkTicketDeleter``, or a test fake."""

    def delete(
        self,
        ticket_ids: Sequence[int],
        *,
        purge: bool,
        expected: Mapping[int, str] | None = None,
    ) -> dict[int, DeletionOutcome]: ...


@dataclass
class DeletionOutcome:
    """What Zendesk said about one ticket id."""

    deleted: bool = False  # soft-deleted by this call
    already_gone: bool = False  # Zendesk no longer had it live (missing, or in its trash)
    purged: bool = False  # permanently deleted too
    purge_status: str | None = None  # how the purge ended; None when none was attempted
    reason: str | None = None  # one line: why it is not gone
    mismatch: bool = False  # not deleted: the ticket's external_id is not its case's

    @property
    def gone(self) -> bool:
        """The goal of both callers: the ticket no longer exists as a live ticket."""
        return self.deleted or self.already_gone


class BulkTicketDeleter:
    """Soft delete, then optionally purge, tickets; returns an outcome per ticket id."""

    def __init__(self, api: ZendeskClient, *, timeout: float | None = None) -> None:
        self._api = api
        self._timeout = timeout  # None: the client's own job timeout

    def delete(
        self,
        ticket_ids: Sequence[int],
        *,
        purge: bool,
        expected: Mapping[int, str] | None = None,
    ) -> dict[int, DeletionOutcome]:
        """Delete these tickets (any number; sent ≤100 per call). Empty input: no call.

        ``expected``: ticket id -> the external_id its case created; each such ticket is
        deleted only if Zendesk shows that external_id on it (or no longer shows it live)."""
        ids = list(dict.fromkeys(ticket_ids))
        outcomes = {ticket_id: DeletionOutcome() for ticket_id in ids}
        for start in range(0, len(ids), MAX_BATCH):
            batch = ids[start : start + MAX_BATCH]
            if expected:
                batch = self._checked(batch, expected, outcomes)
            if not batch:
                continue
            in_trash = self._soft_delete(batch, outcomes)
            if purge and in_trash:
                self._purge(in_trash, outcomes)
        return outcomes

    def _checked(
        self, ids: list[int], expected: Mapping[int, str], outcomes: dict[int, DeletionOutcome]
    ) -> list[int]:
        """The ids safe to delete: those whose live ticket carries the expected external_id,
        and those Zendesk no longer shows live (the delete then finds them gone or in the
        trash, as before). A mismatch is kept out and reported."""
        wanted = [t for t in ids if t in expected]
        shown = self._api.show_tickets(wanted) if wanted else {}
        safe = []
        for ticket_id in ids:
            if ticket_id in shown and shown[ticket_id] != expected.get(ticket_id):
                outcome = outcomes[ticket_id]
                outcome.mismatch = True
                # The value found is not quoted: it may be another integration's identifier.
                outcome.reason = (
                    f"not deleted: ticket {ticket_id} carries another external_id than the case "
                    "that created it (the ledger's ticket id may be wrong); check it by hand"
                )
                log.error("ticket_external_id_mismatch", ticket_id=ticket_id)
            else:
                safe.append(ticket_id)
        return safe

    def _finished(self, job: JobStatus) -> JobStatus:
        if job.finished:
            return job
        return self._api.wait_for_jobs([job.id], timeout=self._timeout).get(job.id, job)

    def _soft_delete(self, ids: list[int], outcomes: dict[int, DeletionOutcome]) -> list[int]:
        """Soft delete ``ids``; returns those now in Zendesk's trash (purge candidates)."""
        try:
            job = self._finished(self._api.destroy_tickets(ids))
        except NotFoundError:
            # Zendesk may refuse the whole call when one id is unknown: halve until the
            # missing ids stand alone. A missing ticket is gone, which is the goal; it is not
            # known to be in the trash, so it is not purged (purging needs a soft delete).
            if len(ids) == 1:
                outcomes[ids[0]].already_gone = True
                return []
            return [t for half in _halves(ids) for t in self._soft_delete(half, outcomes)]
        except RecordError as exc:
            _fail(ids, outcomes, f"destroy_many refused: {type(exc).__name__}")
            return []
        if job.status != "completed":
            still = "" if job.finished else " (still running at timeout)"
            _fail(ids, outcomes, f"destroy_many job {job.id} {job.status}{still}")
            return []
        by_id = {item.id: item for item in job.result_items if item.id is not None}
        return [t for t in ids if _apply_item(by_id.get(t), outcomes[t])]

    def _purge(self, ids: list[int], outcomes: dict[int, DeletionOutcome]) -> None:
        try:
            job = self._finished(self._api.purge_deleted_tickets(ids))
        except NotFoundError:
            if len(ids) == 1:
                outcomes[ids[0]].purge_status = "not_found"
            for half in _halves(ids) if len(ids) > 1 else ():
                self._purge(half, outcomes)
            return
        except SnapzenError as exc:
            # Best effort: the tickets are deleted; Zendesk scrubs them within 30 days anyway.
            log.warning("ticket_purge_failed", tickets=len(ids), error=type(exc).__name__)
            for ticket_id in ids:
                outcomes[ticket_id].purge_status = f"error: {type(exc).__name__}"
            return
        # deleted_tickets/destroy_many answers {"success": true} for the whole job, not per id.
        for ticket_id in ids:
            outcomes[ticket_id].purged = job.status == "completed"
            outcomes[ticket_id].purge_status = job.status if job.finished else "timeout"


def _apply_item(item: JobResult | None, outcome: DeletionOutcome) -> bool:
    """Read one per-item result of a completed destroy job; True when it is in the trash."""
    if item is None or item.success or (item.success is None and not item.error):
        # A completed job without a per-ticket failure deleted it (or found it deleted).
        if item is not None and (item.status or "") == _IN_TRASH_STATUS:
            outcome.already_gone = True
        else:
            outcome.deleted = True
        return True
    if _is_gone(item.status, item.error):
        outcome.already_gone = True
        return False
    # Zendesk's per-item errors may quote what it was given: no email address is kept.
    outcome.reason = one_line(
        f"destroy_many item failed: {item.status or ''} {item.error or ''}", 300
    )
    return False


def _halves(ids: list[int]) -> tuple[list[int], list[int]]:
    return ids[: len(ids) // 2], ids[len(ids) // 2 :]


def _fail(ids: list[int], outcomes: dict[int, DeletionOutcome], reason: str) -> None:
    for ticket_id in ids:
        outcomes[ticket_id].reason = reason


def _is_gone(status: str | None, error: str | None) -> bool:
    text = f"{status or ''} {error or ''}".lower()
    return (status or "").lower().replace(" ", "") in _GONE_STATUSES or "not found" in text


# ---------------------------------------------------------------- profiles

END_USER = "end-user"


@dataclass
class UserErasure:
    """What happened to the profiles found for one email (user ids only)."""

    to_delete: list[int] = field(default_factory=list)  # end-users found
    refused: list[int] = field(default_factory=list)  # agents/admins: never deleted
    deleted: list[int] = field(default_factory=list)  # now gone (deleted now or before)
    failed: dict[int, str] = field(default_factory=dict)  # user id -> one-line reason
    # user id -> the tickets that still name them: kept, on purpose (not a failure)
    blocked: dict[int, list[int]] = field(default_factory=dict)
    # requesters of the person's tickets whose primary email is another: not theirs, kept
    other_email: list[int] = field(default_factory=list)
    # Found nowhere, yet tickets whose requester could not be read (the export refused the
    # read): search may not show a profile made minutes ago, so "none" is not confirmed.
    unconfirmed: list[int] = field(default_factory=list)  # those ticket ids

    @property
    def complete(self) -> bool:
        return not self.refused and not self.failed and not self.unconfirmed

    @property
    def touched(self) -> bool:
        """Anything found at all: worth a line in the ledger's run record."""
        return bool(self.to_delete or self.refused or self.blocked or self.unconfirmed)


@dataclass(frozen=True)
class Requesters:
    """The requesters of the person's tickets (``ZendeskUserEraser.requesters``)."""

    ids: tuple[int, ...] = ()
    unread: tuple[int, ...] = ()  # tickets whose requester could not be read


class ZendeskUserEraser:
    """Finds and deletes the end-user profile(s) of one email address."""

    def __init__(self, api: ZendeskClient, email: str) -> None:
        self._api = api
        self._email = email

    def requesters(self, ticket_ids: Sequence[int]) -> Requesters:
        """The requester ids of these tickets (the person's, before they are deleted): read
        live (``tickets/show_many``), or, for one already deleted, from the tickets changed in
        the last minutes (``lag_window``, read only then). One in neither was deleted longer
        ago, so was its requester created: search shows them; unless the export refused the
        read (``unread``)."""
        ids = sorted(set(ticket_ids))
        found = self._api.ticket_requesters(ids) if ids else {}
        unread: list[int] = []
        if missing := [t for t in ids if t not in found]:
            window = self._api.lag_window
            recent = window.tickets()
            for ticket_id in missing:
                if (requester := int_field(recent.get(ticket_id), "requester_id")) is not None:
                    found[ticket_id] = requester
                elif window.unread:
                    unread.append(ticket_id)
        return Requesters(tuple(sorted(set(found.values()))), tuple(unread))

    def plan(self, requesters: Requesters = Requesters()) -> UserErasure:
        """Look the profiles up (read-only): which would be deleted, which refused, and
        which are kept because a ticket still names them. ``requesters``: from the person's
        tickets (``requesters``), which search may not show yet; each counts only if its
        profile has this exact email."""
        result = UserErasure()
        users = self._api.find_users_by_email(self._email)
        searched = {int(user["id"]) for user in users}
        for user_id in sorted(set(requesters.ids) - searched):
            user = self._api.show_user(user_id)
            if user is None:
                continue  # gone already (deleted by hand, or by an earlier run)
            if has_email(user, self._email):
                users.append(user)
            else:
                result.other_email.append(user_id)
        if not users:
            result.unconfirmed = list(requesters.unread)
        for user in users:
            user_id = int(user["id"])
            bucket = result.to_delete if user.get("role") == END_USER else result.refused
            if user_id not in bucket:
                bucket.append(user_id)
        for user_id in list(result.to_delete):
            try:
                tickets = self._api.user_ticket_ids(user_id)
            except BadRequestError as exc:  # the lag window unread: a ticket may name them
                result.failed[user_id] = f"tickets naming it not read ({type(exc).__name__})"
                result.to_delete.remove(user_id)
                continue
            if tickets:
                result.blocked[user_id] = tickets
                result.to_delete.remove(user_id)
        return result

    def erase(self, requesters: Requesters = Requesters()) -> UserErasure:
        result = self.plan(requesters)
        for user_id in result.refused:
            log.warning("user_erasure.refused_not_end_user", user_id=user_id)
        for user_id, tickets in result.blocked.items():
            log.info("user_erasure.kept_tickets_remain", user_id=user_id, tickets=len(tickets))
        result.deleted, failed = delete_profiles(self._api, result.to_delete)
        result.failed.update(failed)
        return result


def delete_profiles(
    api: ZendeskClient,
    user_ids: Iterable[int],
    refused: type[Exception] | tuple[type[Exception], ...] = (RecordError, BadRequestError),
) -> tuple[list[int], dict[int, str]]:
    """Soft delete then purge each profile: (those now gone, user id -> why not). Gone
    includes a 404 on either step (that step's goal holds: deleted by hand or by an earlier
    run); why not is the error's class only, since Zendesk's details may quote the person's
    name or email. ``refused``: the errors reported so (the erasure's: a refusal; the
    retention sweep's: any SnapzenError); any other propagates."""
    gone: list[int] = []
    failed: dict[int, str] = {}
    for user_id in user_ids:
        for name, step in (
            ("DELETE users/{id}", api.delete_user),
            ("DELETE deleted_users/{id}", api.purge_deleted_user),
        ):
            try:
                step(user_id)
            except NotFoundError:
                continue
            except refused as exc:
                failed[user_id] = f"{name} refused ({type(exc).__name__})"
                log.warning("profile_not_deleted", user_id=user_id, reason=failed[user_id])
                break
        else:
            gone.append(user_id)
    return gone, failed
