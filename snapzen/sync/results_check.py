"""Checks between Zendesk's answers and the ledger (pure, or one query; no HTTP of their own).

- ``check_results``: a finished import job's results map to the request's tickets by
  ``index`` (Zendesk documents it); nothing in them names the external_id. A clean answer
  (``clean_answer``: completed, every index once, an id for each, no error, ids distinct,
  as many as the batch) is recorded as it is, with no request of its own. Any other answer is
  in doubt: the tickets it names are read back (``tickets/show_many``, one call per 100) and a
  case is recorded only with the ticket whose ``external_id`` is its own; the rest are looked
  up by external_id. Deletions and access packs check the external_id before they act, so a
  wrong ticket id never leads to deleting or disclosing another person's ticket.
- ``failure_reason``: one line for a failed item; a requester refusal names the setting that
  avoids it.
- ``lookup_is_conclusive``: an ambiguous import (5xx or timeout on the POST) can be settled by
  the external_id lookup as soon as Zendesk lists no unfinished import job, instead of after
  ``recovery_grace_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from snapzen.policy.models import JobResult, JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.log import get_logger, one_line

log = get_logger("snapzen.sync.results_check")

# Job types of ticket imports (create_many through the import endpoint, and the plain one).
IMPORT_JOB_TYPES = frozenset({"bulk_import_tickets", "bulk_create_tickets"})
REQUESTER_HINT = (
    "set zendesk.anonymous_requester_id (SNAPZEN_ZENDESK__ANONYMOUS_REQUESTER_ID) to import "
    "chats without a valid visitor email under one existing user"
)

ShowTickets = Callable[[Sequence[int]], dict[int, str | None]]


@dataclass
class ResultCheck:
    """What a finished job's results come to, once the named tickets were read back."""

    synced: dict[str, int] = field(default_factory=dict)  # case -> its own ticket
    failures: dict[str, str] = field(default_factory=dict)  # case -> reason
    unknown: list[str] = field(default_factory=list)  # no usable result: look it up
    # (case, ticket id the result named, that ticket's external_id): never recorded.
    mismatched: list[tuple[str, int, str | None]] = field(default_factory=list)


def failure_reason(result: JobResult) -> str:
    """``Zendesk: <error>: <details>``; a refused requester also names the setting."""
    text = f"Zendesk: {result.error}: {result.details}"
    if "requester" in f"{result.error} {result.details}".lower():
        text += f" ({REQUESTER_HINT})"
    return one_line(text)


def clean_answer(case_ids: Sequence[str], status: JobStatus) -> dict[str, int] | None:
    """Case -> ticket id when a finished job's results are a clean answer: the job completed,
    one result for every index of the batch (no more, none twice), each with an id and no
    error, and no id twice. None when the answer is in doubt."""
    items = status.result_items
    if status.status != "completed" or len(items) != len(case_ids):
        return None
    ids: dict[int, int] = {}
    for item in items:
        if item.index is None or item.id is None or item.error or item.success is False:
            return None
        if not 0 <= item.index < len(case_ids) or item.index in ids:
            return None
        ids[item.index] = int(item.id)
    if len(set(ids.values())) != len(ids):
        return None
    return {case_id: ids[index] for index, case_id in enumerate(case_ids)}


def check_results(case_ids: Sequence[str], status: JobStatus, show: ShowTickets) -> ResultCheck:
    """Map a finished job's per-index results to cases: a clean answer as it is; one in doubt
    trusting a ticket id only after the ticket's external_id was read back and found to be
    the case's own."""
    clean = clean_answer(case_ids, status)
    if clean is not None:
        return ResultCheck(synced=clean)
    check = ResultCheck()
    by_index = {r.index: r for r in status.result_items if r.index is not None}
    named: dict[str, int] = {}
    for index, case_id in enumerate(case_ids):
        result = by_index.get(index)
        if result is not None and result.id is not None and not result.error:
            named[case_id] = int(result.id)
        elif result is not None and (result.error or result.details):
            check.failures[case_id] = failure_reason(result)
        else:
            check.unknown.append(case_id)
    if not named:
        return check
    shown = show(list(dict.fromkeys(named.values())))
    owner = {ext: ticket for ticket, ext in shown.items() if ext is not None}
    for case_id, ticket_id in named.items():
        wanted = external_id(case_id)
        if shown.get(ticket_id) == wanted:
            check.synced[case_id] = ticket_id
            continue
        check.mismatched.append((case_id, ticket_id, shown.get(ticket_id)))
        if wanted in owner:
            # Results out of step: the case's own ticket is among those the job named.
            check.synced[case_id] = owner[wanted]
        else:
            check.unknown.append(case_id)
    if check.mismatched:
        log.error(
            "job_result_mismatch",
            job_id=status.id,
            mismatched=len(check.mismatched),
            examples=[
                {"case_id": c, "ticket_id": t, "external_id": e} for c, t, e in check.mismatched[:5]
            ],
        )
    return check


def lookup_is_conclusive(unfinished: Sequence[JobStatus]) -> bool:
    """True when no import job is queued or working: a ticket an ambiguous POST created
    exists by now, so an external_id lookup that finds none proves it was never created."""
    return not any(
        (job.job_type or "") in IMPORT_JOB_TYPES or not job.job_type for job in unfinished
    )
