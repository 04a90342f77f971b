"""Filling one create_many batch from the prepared cases; the decisions met on the way
(withheld, ignored, failed preparation) are written as they are met."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from snapzen.sync.contracts import Batch, Ticket
from snapzen.sync.prepared import PreparedCases, Ready
from snapzen.sync.results import Recorder, TerminalRow


@dataclass
class FilledBatch:
    batch: Batch
    tickets: list[Ticket]
    drafts: dict[str, dict[str, Any]]  # case id -> what the ledger records (with batch_index)


def next_batch(cases: PreparedCases, recorder: Recorder, size: int) -> FilledBatch | None:
    """Take ready cases until a batch of ``size`` is full.

    Every case taken either joins the batch (excluded from the next query), leaves 'pending'
    (withheld, ignored, failed), or is given back for the next batch (a retry that must go
    alone), so the loop always progresses. None when nothing is ready."""
    tickets: list[Ticket] = []
    drafts: dict[str, dict[str, Any]] = {}
    deferred: list[Ready] = []
    solo = False
    while len(tickets) < size and not solo:
        ready = cases.take(
            size - len(tickets), exclude=[*drafts, *(item.case_id for item, _ in deferred)]
        )
        if not ready:
            break
        terminal: list[TerminalRow] = []
        failures: dict[str, str] = {}
        for position, (item, prepared) in enumerate(ready):
            # A case that failed before goes out alone: if its ticket is what Zendesk
            # refuses (even a whole-request 4xx), it no longer takes 99 others down.
            if item.attempts > 0 and tickets:
                deferred.append((item, prepared))
                continue
            if prepared.ticket is not None and prepared.draft is not None:
                tickets.append(prepared.ticket)
                drafts[item.case_id] = {"batch_index": len(drafts), **prepared.draft}
                if item.attempts > 0:
                    solo = True
                    cases.give_back(ready[position + 1 :])
                    break
            elif prepared.terminal is not None:
                terminal.append((item.case_id, *prepared.terminal))
            else:
                failures[item.case_id] = prepared.error or "unknown preparation error"
        recorder.terminal(terminal)
        recorder.failed(failures)
    # A deferred retry leads the next batch (alone), instead of waiting behind every case
    # prepared ahead of it.
    cases.give_back(deferred)
    if not tickets:
        return None
    return FilledBatch(Batch(uuid.uuid4().hex, list(drafts)), tickets, drafts)
