"""Which recipients an erasure must be communicated to (Art. 19 GDPR), and how.

Decided from the erasure's own result and the person's chats, then chained by
snapzen.commands.erase_request in the erasure's own transaction: an erasure is never
recorded without its Art. 19 notices, nor the notices without it (a crash in between left one
without the other when they were two commits), and no second wait for the writer lock.

- **Zendesk** is *notified* when snapzen deleted something there itself (the deletion is the
  notice);
- **SnapEngage** is *to be told* for each chat it still holds (it has no deletion API);
- every recipient of kind ``other`` (``[transfer] recipients`` with ``system = "other"``, and
  ``[record] recipients``) is *to be told*: snapzen never sends to them, so it cannot know
  what they hold, and the operator tells them which chats to erase. An open notice stays
  listed (``snapzen ledger notices``) until ``ledger notices done`` records that it was told.

Ids, dates and recipient names only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from snapzen.ledger.rights import notices
from snapzen.support.settings_transfer import RecipientSystem

if TYPE_CHECKING:
    from snapzen.commands.erase import ErasureResult
    from snapzen.support.settings import Settings


@dataclass(frozen=True)
class Chat:
    case_id: str
    started_on: date
    widget_id: str | None = None


def person_chats(conn: sqlite3.Connection, subject_ref: str) -> list[Chat]:
    """Every chat of the person snapzen knows (sent, withheld or pending), oldest first."""
    rows = conn.execute(
        "SELECT case_id, started_at, widget_id FROM cases WHERE subject_ref = ? "
        "AND started_at IS NOT NULL ORDER BY started_at, case_id",
        (subject_ref,),
    ).fetchall()
    return [
        Chat(str(case_id), date.fromisoformat(str(started)[:10]), widget)
        for case_id, started, widget in rows
    ]


def at_snapengage(chats: Sequence[Chat], today: date, snapengage_days: int) -> list[Chat]:
    """The chats SnapEngage still holds today (its own copy until start + retention)."""
    return [c for c in chats if c.started_on + timedelta(days=snapengage_days) >= today]


def profile_deleted(result: ErasureResult) -> bool:
    users = result.users
    return users is not None and not users.blocked and bool(users.deleted)


def decide(
    result: ErasureResult,
    chats: Sequence[Chat],
    *,
    today: date,
    snapengage_days: int,
    others: Sequence[str] = (),
) -> list[notices.Notice]:
    """The Art. 19 notices of one erasure run (pure); ``chats``: all of the person's."""
    found: list[notices.Notice] = []
    on = today.isoformat()
    deleted = sorted(result.deleted)
    gone_profile = profile_deleted(result)
    if deleted or gone_profile:
        found.append(notices.Notice(
            "Zendesk", notices.NOTIFIED, on,
            "snapzen deleted the data there itself (tickets"
            + (" and profile" if gone_profile else "") + ")",
        ))  # fmt: skip
    held = at_snapengage(chats, today, snapengage_days)
    if held:
        found.append(notices.Notice(
            "SnapEngage", notices.TO_NOTIFY, on,
            "snapzen cannot delete there: ask SnapEngage to erase chats "
            + ", ".join(c.case_id for c in held),
        ))  # fmt: skip
    if chats or deleted:
        cases = ", ".join(c.case_id for c in chats) or "of this person"
        tickets = f" (Zendesk tickets {', '.join(map(str, deleted))})" if deleted else ""
        for name in dict.fromkeys(others):  # each once, in settings order
            found.append(notices.Notice(
                name, notices.TO_NOTIFY, on,
                f"snapzen never sends to {name} itself: ask {name} to erase what it holds of "
                f"chats {cases}{tickets}",
            ))  # fmt: skip
    return found


def other_recipients(settings: Settings) -> tuple[str, ...]:
    """The recipients of kind other, by name, each once: ``[transfer] recipients`` with
    ``system = "other"``, then ``[record] recipients``."""
    names = [r.name for r in settings.transfer.recipients if r.system is RecipientSystem.OTHER]
    return tuple(dict.fromkeys([*names, *settings.record.recipients]))
