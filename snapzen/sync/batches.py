"""Decide and build: one create_many batch filled from the ready cases, each prepared
(consent decision, ticket, ledger fields) from its stored payload when the batch is filled.
The decisions met on the way (withheld, ignored, failed preparation) are written as they are
met; a case taken but not used (a retry that must go alone) stays 'pending' and is selected
again for a later batch, so what is sent is always what is stored."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.store import outbox
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.policy.models import ImportTicket
from snapzen.sync.contracts import Batch
from snapzen.sync.prepare import CasePreparer, Prepared
from snapzen.sync.results import Recorder, TerminalRow


@dataclass
class FilledBatch:
    batch: Batch
    tickets: list[ImportTicket]
    drafts: dict[str, dict[str, Any]]  # case id -> what the ledger records (with batch_index)
    built_from: dict[str, str | None]  # case id -> the stored payload its ticket was built from


def prepare(preparer: CasePreparer, ready: outbox.ReadyCase) -> Prepared:
    """A ready case prepared from its stored payload."""
    if ready.raw_json is None:
        return Prepared(ready.case_id, error="invalid SnapEngage case: its stored payload is gone")
    return preparer.prepare_stored(ready.case_id, ready.widget_id, ready.raw_json)


def next_batch(
    db: sqlite_utils.Database,
    preparer: CasePreparer,
    recorder: Recorder,
    size: int,
    settled_before: Callable[[], datetime],
) -> FilledBatch | None:
    """Take ready cases until a batch of ``size`` is full; None when nothing is ready.

    Every case taken either joins the batch, leaves 'pending' (withheld, ignored, failed),
    or is passed over for this batch (excluded from the next query), so the loop always
    progresses. A case that failed before goes out alone: if its ticket is what Zendesk
    refuses (even a whole-request 4xx), it no longer takes 99 others down."""
    tickets: list[ImportTicket] = []
    drafts: dict[str, dict[str, Any]] = {}
    built_from: dict[str, str | None] = {}
    passed_over: list[str] = []
    while len(tickets) < size:
        ready = outbox.ready_cases(
            db, settled_before(), size - len(tickets), exclude=[*drafts, *passed_over]
        )
        if not ready:
            break
        terminal: list[TerminalRow] = []
        failures: dict[str, str] = {}
        solo = False
        for item in ready:
            if item.attempts > 0 and tickets:
                passed_over.append(item.case_id)  # a retry: it leads a later batch, alone
                continue
            prepared = prepare(preparer, item)
            if prepared.ticket is not None and prepared.draft is not None:
                tickets.append(prepared.ticket)
                drafts[item.case_id] = {"batch_index": len(drafts), **prepared.draft}
                built_from[item.case_id] = item.raw_json
                if item.attempts > 0:
                    solo = True  # the cases after it stay pending for the next batch
                    break
            elif prepared.terminal is not None:
                terminal.append((item.case_id, *prepared.terminal))
            else:
                failures[item.case_id] = prepared.error or "unknown preparation error"
        recorder.terminal(terminal)
        recorder.failed(failures)
        if solo:
            break
    if not tickets:
        return None
    return FilledBatch(Batch(uuid.uuid4().hex, list(drafts)), tickets, drafts, built_from)


def still_as_built(db: sqlite_utils.Database, filled: FilledBatch) -> bool:
    """True when every case of ``filled`` is still 'pending' with the payload its ticket was
    built from (a batch built ahead: a later page may since have refreshed or withheld one)."""
    marks = ", ".join("?" * len(filled.built_from))
    rows = db.execute(
        f"SELECT case_id, raw FROM cases WHERE status = '{CaseStatus.PENDING}' "
        f"AND case_id IN ({marks})",
        list(filled.built_from),
    )
    return dict(rows.fetchall()) == filled.built_from
