"""Every kind of row the ledger (the chained ``events`` table) holds, in one place.

``ledger list --event`` offers and accepts exactly these, the auditor UI describes the
``event`` column from them, and tests/integration/ledger/test_events.py fails when code appends
an event not listed here. The words used for counts (docs/cli.md, "Counts"):

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
    """Every kind of ledger row, each with what it records (``ledger list --help`` and the
    auditor UI describe the ``event`` column with it). A member is its name as stored."""

    meaning: str

    def __new__(cls, value: str, meaning: str = "") -> Event:  # Event(name): the lookup
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    TRANSFER = (
        "transfer",
        "a restricted transfer: a chat sent to Zendesk outside the EEA/UK, with its legal basis",
    )
    SENT = "sent", "a chat sent to Zendesk that is not a restricted transfer"
    ADOPTED = (
        "adopted",
        (
            "a ticket found in Zendesk whose transfer this ledger does not record (after a "
            "restore from an older backup), adopted with that evidence"
        ),
    )
    WITHHELD = "withheld", "a chat not sent, and why (details.reason: no consent, refused, erased)"
    IGNORED = "ignored", "a case that is not a chat to send (offline message, test, ...)"
    DISMISSED = "dismissed", "a failed case given up for good by `snapzen dismiss`, with the reason"
    FAILED = "failed", "a case that used all its attempts"
    ERASED = "erased", "a ticket deleted on an Art. 17 erasure request"
    EXPIRED = "expired", "a ticket deleted at the end of its retention"
    RUN = "run", "a finished run (a digest of its `runs` row)"
    REQUEST = "request", "a data-subject request received or answered (case_id holds its id)"
    REQUEST_PAUSED = (
        "request_paused",
        (
            "a request's Art. 12(3) clock stopped while the person is asked for proof of identity "
            "or a clarification (details.reason)"
        ),
    )
    REQUEST_RESUMED = "request_resumed", "a request's clock restarted; the pause moves its deadline"
    REQUEST_EXTENDED = (
        "request_extended",
        (
            "a request's deadline extended once by up to two further months (Art. 12(3)), with the "
            "reason told to the person"
        ),
    )
    ACCESS_PROVIDED = "access_provided", "an access pack handed over (Art. 15)"
    HOLD_ADDED = "hold_added", "a legal hold placed"
    HOLD_REMOVED = "hold_removed", "a legal hold lifted"
    RESTORED = "restored", "the ledger restored from a backup (`ledger restore`)"
    LEDGER_BOUND = "ledger_bound", "the ledger bound to its key (`snapzen init`, or later)"
    CASE_FLAGGED = "case_flagged", "a case a person must decide (e.g. several tickets, one chat)"
    CASE_FLAG_RESOLVED = (
        "case_flag_resolved",
        (
            "a flagged case settled: Zendesk agrees with the ledger again (`ledger reconcile`, "
            "details.resolved_by reconcile) or a person decided (`ledger flags resolve`, "
            "details.reason)"
        ),
    )
    RECIPIENT_NOTICE = "recipient_notice", "an Art. 19 notice to a recipient of erased data"
    OPERATOR_STATEMENT = (
        "operator_statement",
        ("a statement an operator recorded (e.g. about an erasure reapplied from the journal)"),
    )
    RECONCILED = (
        "reconciled",
        (
            "a check of the ledger against Zendesk (`ledger reconcile`): its outcome and findings "
            "by kind in details"
        ),
    )
    PERIOD_FORGOTTEN = (
        "period_forgotten",
        (
            "a month of chats (or a request period, req-YYYY-MM) forgotten at the end of its "
            "retention: its subject-reference key destroyed, its cases (or erasure records) "
            "deleted (details.period, details.cases_forgotten or details.request_ids; never a "
            "reference)"
        ),
    )


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


def describe_all() -> str:
    """``name = meaning; ...`` for help texts and the auditor UI."""
    return "; ".join(f"{event.value} = {event.meaning}" for event in Event)


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
