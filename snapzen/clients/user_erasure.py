"""Delete a data subject's Zendesk end-user profile (opt-in part of the Art. 17 erasure).

snapzen creates the profile (name and email) through the import's ``requester``, so erasing
the person's tickets leaves it behind. ``ZendeskUserEraser`` finds it by exact email, then
soft-deletes it (``DELETE users/{id}``) and permanently deletes it (``DELETE
deleted_users/{id}``; Zendesk requires the soft delete first, reference §11.2).

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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

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

    @property
    def complete(self) -> bool:
        return not self.refused and not self.failed

    @property
    def touched(self) -> bool:
        """Anything found at all: worth a line in the ledger's run record."""
        return bool(self.to_delete or self.refused or self.blocked)


class ZendeskUserEraser:
    """Finds and deletes the end-user profile(s) of one email address."""

    def __init__(self, api: ZendeskClient, email: str) -> None:
        self._api = api
        self._email = email

    def plan(self) -> UserErasure:
        """Look the profiles up (read-only): which would be deleted, which refused, and
        which are kept because a ticket still names them."""
        result = UserErasure()
        for user in self._api.find_users_by_email(self._email):
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

    def erase(self) -> UserErasure:
        result = self.plan()
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
