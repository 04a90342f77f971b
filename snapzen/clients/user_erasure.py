"""Delete a data subject's Zendesk end-user profile (opt-in part of the Art. 17 erasure).

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
``snapzen.clients.zendesk`` is imported for typing only, like
``snapzen.clients.ticket_deletion``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from snapzen.clients.search_lag import has_email, int_field
from snapzen.support.errors import BadRequestError, NotFoundError, RecordError
from snapzen.support.log import get_logger

if TYPE_CHECKING:  # typing only, as in snapzen.clients.ticket_deletion
    from snapzen.clients.zendesk import ZendeskClient

log = get_logger("snapzen.clients.user_erasure")

END_USER = "end-user"


class ProfileDeletionApi(Protocol):
    """The part of ``snapzen.clients.zendesk.ZendeskClient`` that deleting a profile needs."""

    def delete_user(self, user_id: int) -> None: ...

    def purge_deleted_user(self, user_id: int) -> None: ...


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
            tickets = self._api.user_ticket_ids(user_id)
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
        for user_id in result.to_delete:
            reason = delete_profile(self._api, user_id)
            if reason is None:
                result.deleted.append(user_id)
            else:
                result.failed[user_id] = reason
                log.warning("user_erasure.failed", user_id=user_id, reason=reason)
        return result


def delete_profile(
    api: ProfileDeletionApi,
    user_id: int,
    refused: type[Exception] | tuple[type[Exception], ...] = (RecordError, BadRequestError),
) -> str | None:
    """Soft delete then purge one profile; None when it is gone (a 404 on either step: that
    step's goal holds, deleted by hand or by an earlier run), else why not: the error's class
    only, since Zendesk's details may quote the person's name or email. ``refused``: the
    errors reported so (the erasure's: a refusal; the retention sweep's: any SnapzenError);
    any other propagates."""
    for name, step in (
        ("DELETE users/{id}", api.delete_user),
        ("DELETE deleted_users/{id}", api.purge_deleted_user),
    ):
        try:
            step(user_id)
        except NotFoundError:
            continue
        except refused as exc:
            return f"{name} refused ({type(exc).__name__})"
    return None
