"""Cases flagged for a person (snapzen.ledger.store.case_flags): `snapzen ledger flags` lists
the open ones, `ledger flags resolve` records a person's decision, and `ledger reconcile`
closes those Zendesk now settles (``judge``, pure; recorded with the check). Each closing is
a chained ``case_flag_resolved`` event, written with ``resolved_at`` in one transaction.

A flag is settled by Zendesk when the case's live tickets (those carrying its
``external_id``) are exactly what the ledger expects: the ticket it records for a
``duplicate_tickets`` or ``ticket_mismatch`` flag (the others deleted, or merged and their
``external_id`` cleared), none for ``ticket_for_withheld``. Only what the export showed is
judged: every ticket the flag names, and the ledger's, must have been read (a read cut short
by ``--max-requests``, or begun after a ticket last changed, settles nothing it did not see),
and a flag raised or refreshed after the export began waits for the next check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from snapzen.commands.ledger_open import locked
from snapzen.commands.reconcile import SeenTicket, live_by_case
from snapzen.ledger.evidence.reconciliation import LedgerCase
from snapzen.ledger.store import case_flags
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import open_ledger, transaction
from snapzen.support import clock, errors
from snapzen.support.settings import Settings

KINDS = (case_flags.DUPLICATE_TICKETS, case_flags.TICKET_MISMATCH, case_flags.TICKET_FOR_WITHHELD)


@dataclass(frozen=True)
class Settled:
    """An open flag Zendesk now settles: the case's live tickets are what the ledger says."""

    case_id: str
    kind: str
    live_tickets: list[int]  # the ledger's ticket, or none (ticket_for_withheld)

    def how(self) -> dict[str, Any]:
        """What its ``case_flag_resolved`` event records of how it was settled."""
        return {"resolved_by": "reconcile", "zendesk_tickets": self.live_tickets}


def judge(
    flags: Iterable[Mapping[str, Any]],
    cases: Iterable[LedgerCase],
    tickets: Mapping[int, SeenTicket],
    *,
    export_started: str,
) -> list[Settled]:
    """The open ``flags`` that the export's ``tickets`` (by id, each in its last state) settle;
    ``export_started``: ISO UTC, when the export began."""
    live = live_by_case(tickets)
    ledger = {case.case_id: case for case in cases}
    settled = []
    for flag in flags:
        case_id, kind = str(flag["case_id"]), str(flag["kind"])
        expected = _expected(kind, ledger.get(case_id))
        if expected is None or str(flag["flagged_at"]) >= export_started:
            continue
        if not set(flag["ticket_ids"]) | expected <= tickets.keys():
            continue  # a ticket the flag names was not read: nothing is known of it
        if set(live.get(case_id, ())) == expected:
            settled.append(Settled(case_id, kind, sorted(expected)))
    return settled


def _expected(kind: str, case: LedgerCase | None) -> set[int] | None:
    """The live tickets that settle a flag of ``kind`` (None: no answer Zendesk can give)."""
    if kind == case_flags.TICKET_FOR_WITHHELD:
        return set()
    if kind not in KINDS or case is None or case.deleted or case.ticket_id is None:
        return None
    return {case.ticket_id} if case.status == CaseStatus.SYNCED else None


def listing(settings: Settings) -> list[dict[str, Any]]:
    """Every open flag, oldest first."""
    db = open_ledger(settings.ledger, read_only=True)
    with closing(db.conn):
        return case_flags.open_flags(db, limit=-1)


def resolve(
    settings: Settings,
    case_id: str,
    kind: str,
    *,
    reason: str,
    actor: str,
    wait_seconds: float,
) -> dict[str, Any]:
    """Record that a person decided an open flag (``reason``: what and why), under the
    writer lock; the flag as now resolved. ConfigError (exit 2, nothing written) for an
    unknown kind, a case without that flag or a flag already resolved."""
    if kind not in KINDS:
        raise errors.ConfigError(f"--kind {kind!r} is not a flag kind: one of {', '.join(KINDS)}")
    if not reason.strip():
        raise errors.ConfigError("--reason is empty: record what was decided and why")
    with locked(settings, wait_seconds) as db, transaction(db) as conn:
        flag = case_flags.find_flag(conn, case_id, kind)
        if flag is None:
            raise errors.ConfigError(
                f"case {case_id!r} has no {kind} flag (`snapzen ledger flags` lists the open ones)"
            )
        if flag["resolved_at"] is not None:
            raise errors.ConfigError(
                f"the {kind} flag of case {case_id!r} was already resolved at {flag['resolved_at']}"
            )
        now = clock.now()
        how = {"resolved_by": "person", "reason": reason}
        seq = case_flags.resolve_flag(conn, case_id, kind, now, actor=actor, details=how)
    return {**flag, "resolved_at": clock.format(now), "seq": seq, "reason": reason}
