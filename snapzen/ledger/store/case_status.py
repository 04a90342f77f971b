"""The statuses a case moves through in the ``cases`` outbox.

A ``StrEnum``: each member *is* its string, so the values written to SQLite, compared in SQL
and shown in JSON stay exactly the words the schema's CHECK constraint and existing ledgers
use. Only ``snapzen.ledger`` changes a case's status (see ``snapzen.ledger.store.transitions`` and
``snapzen.ledger.store.outbox``); everyone else reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class CaseStatus(StrEnum):
    # In the order the schema lists them; `status` reports and tables follow it.
    PENDING = "pending"  # staged, waiting to be sent (or retried)
    PUSHING = "pushing"  # in a Zendesk import job; recovery settles it after a crash
    SYNCED = "synced"  # a ticket exists (terminal)
    WITHHELD = "withheld"  # decided never to send (terminal; reason recorded)
    FAILED = "failed"  # last attempt failed; retried while attempts are left
    IGNORED = "ignored"  # not a chat snapzen sends, or dismissed by a person (terminal)


TERMINAL: tuple[CaseStatus, ...] = (CaseStatus.SYNCED, CaseStatus.WITHHELD, CaseStatus.IGNORED)
UNSETTLED: tuple[CaseStatus, ...] = (CaseStatus.PENDING, CaseStatus.PUSHING)
# Not sent and not being sent: the only statuses a person's decision may still change.
UNSENT: tuple[CaseStatus, ...] = (CaseStatus.PENDING, CaseStatus.FAILED)
# Not synced yet and not decided against: what the deadline and "oldest unsynced" watch.
UNSENT_OR_PUSHING: tuple[CaseStatus, ...] = (*UNSENT, CaseStatus.PUSHING)
# A failed case that can be sent again (an SQL condition on `cases`): a payload and a start
# time, from a case id that was usable. A pass requeues these while attempts are left,
# `retry --all-failed` takes them all, and `retry CASE` refuses any other failed case.
RETRYABLE_FAILED = (
    f"status = '{CaseStatus.FAILED.value}' AND raw IS NOT NULL AND started_at IS NOT NULL "
    "AND case_id NOT LIKE 'invalid:%'"
)


def sql_list(statuses: Iterable[CaseStatus]) -> str:
    """``('pending', 'failed')`` for an SQL ``IN``: built from the enum's own constants only
    (never from input), so a fixed query keeps its text and the planner its index choice."""
    return "(" + ", ".join(f"'{CaseStatus(s).value}'" for s in statuses) + ")"
