"""Every kind of row the ledger (the chained ``events`` table) holds, in one place.

``ledger list --event`` offers and accepts exactly these, the auditor UI describes the
``event`` column with what each records (web_metadata.json, ``event_meanings``: one entry per
member, checked), and tests/integration/ledger/test_events.py fails when code appends an event
not listed here. The words used for counts (docs/cli.md, "Counts"):

- **ledger rows**: every row of the ledger, whatever its event;
- **decisions**: the rows that record what became of a chat (``STATUS_AFTER``);
- **transfers**: the decisions that are restricted transfers (``transfer``), a subset.

The decision log: a transfer row alone proves what was sent; it cannot show that the refused
chats were not, because a withheld case is only a status in the working ``cases`` table,
which anyone with the file can flip. So each decision about a case (``decision`` builds its
row) is appended to the chain in the same transaction as the status it explains, and
``snapzen.ledger.evidence.agreement`` checks that the working tables still say what the chain
says (``STATUS_AFTER``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from snapzen.ledger.store.case_status import CaseStatus

# Columns of `transfers` that version 1 hashes, in schema order (all but `hash`); the record
# keys of every version (never renamed).
CHAINED_COLUMNS = (
    "seq",
    "event",
    "case_id",
    "widget_id",
    "subject_ref",
    "origin_country",
    "recipient",
    "destination_country",
    "legal_basis",
    "mechanism_ref",
    "consent_variable",
    "consent_value",
    "consent_source",
    "consent_observed_at",
    "data_categories",
    "redactions",
    "ticket_id",
    "transferred_at",
    "retention_until",
    "run_id",
    "actor",
    "details",
    "prev_hash",
)
RECORD_KEYS = CHAINED_COLUMNS[1:-1]
# A column whose name is not its record key: column -> key.
KEY_OF = {"recorded_at": "transferred_at"}
# The columns generated from the record, in record order.
RECORD_COLUMNS = tuple({key: col for col, key in KEY_OF.items()}.get(k, k) for k in RECORD_KEYS)


class Event(StrEnum):
    """Every kind of ledger row, as stored; what each records is told in the auditor UI's
    metadata (web_metadata.json, ``event_meanings``)."""

    TRANSFER = "transfer"
    SENT = "sent"
    ADOPTED = "adopted"
    WITHHELD = "withheld"
    IGNORED = "ignored"
    DISMISSED = "dismissed"
    FAILED = "failed"
    ERASED = "erased"
    EXPIRED = "expired"
    RUN = "run"
    REQUEST = "request"
    REQUEST_PAUSED = "request_paused"
    REQUEST_RESUMED = "request_resumed"
    REQUEST_EXTENDED = "request_extended"
    ACCESS_PROVIDED = "access_provided"
    HOLD_ADDED = "hold_added"
    HOLD_REMOVED = "hold_removed"
    RESTORED = "restored"
    LEDGER_BOUND = "ledger_bound"
    CASE_FLAGGED = "case_flagged"
    CASE_FLAG_RESOLVED = "case_flag_resolved"
    RECIPIENT_NOTICE = "recipient_notice"
    OPERATOR_STATEMENT = "operator_statement"
    RECONCILED = "reconciled"
    PERIOD_FORGOTTEN = "period_forgotten"


# What became of a chat: the decisions counted as such in every summary, each with the status
# it leaves its case in.
STATUS_AFTER: dict[str, CaseStatus] = {
    Event.TRANSFER: CaseStatus.SYNCED,
    Event.SENT: CaseStatus.SYNCED,
    Event.ADOPTED: CaseStatus.SYNCED,
    Event.WITHHELD: CaseStatus.WITHHELD,
    Event.IGNORED: CaseStatus.IGNORED,
    Event.DISMISSED: CaseStatus.IGNORED,
    Event.FAILED: CaseStatus.FAILED,
}
DECISION_NAMES: tuple[str, ...] = tuple(str(event) for event in STATUS_AFTER)


def sql_list(events: Iterable[str]) -> str:
    """Events as an SQL list, ``('transfer', 'sent', ...)``: members of ``Event`` only
    (ValueError otherwise), so never user input."""
    return "(" + ", ".join(f"'{Event(name).value}'" for name in events) + ")"


DECISIONS_SQL = sql_list(STATUS_AFTER)


def decision(
    event: str,
    case_id: str,
    stamp: str,
    *,
    details: Mapping[str, Any] | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One decision row's fields (a ``STATUS_AFTER`` event, or a ticket ``erased`` or
    ``expired``), ``stamp`` its time (``recorded_at``)."""
    if event not in STATUS_AFTER and event not in (Event.ERASED, Event.EXPIRED):
        raise ValueError(f"not a decision: {event}")
    return {
        "event": event,
        "case_id": case_id,
        "recorded_at": stamp,
        "details": dict(details) if details else None,
        **columns,
    }
