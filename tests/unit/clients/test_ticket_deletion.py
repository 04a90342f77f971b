"""The shared ticket deleter against a stateful fake of the Zendesk deletion API.

The fake keeps real state (live → trash → purged) and answers the way the sandbox does
(per-item ``NotFound`` / ``AlreadyDeleted``), or, with ``missing_is_404``, refuses a whole call
naming an unknown ticket; tests assert on outcomes and on that state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from snapzen.clients.deletion import BulkTicketDeleter, DeletionOutcome
from snapzen.policy.models import JobStatus
from snapzen.support.errors import AuthError, InvalidRecordError, NotFoundError, ServerError


class FakeDeletionApi:
    """tickets/destroy_many and deleted_tickets/destroy_many as queued jobs that run when
    waited for, plus job_statuses polling."""

    def __init__(self, live: Iterable[int], *, trash: Iterable[int] = ()) -> None:
        self.live = set(live)
        self.trash = set(trash)
        self.purged: set[int] = set()
        self.destroy_calls: list[list[int]] = []
        self.purge_calls: list[list[int]] = []
        self.missing_is_404 = False  # refuse a whole destroy/purge naming an unknown ticket
        self.fail_jobs: set[str] = set()  # job kinds that end "failed" without acting
        self.stuck_jobs: set[str] = set()  # job kinds still running when the wait times out
        self.item_failures: dict[int, str] = {}  # ticket id -> per-item error status
        self.destroy_error: Exception | None = None
        self.purge_error: Exception | None = None
        self.scrub_before_purge: set[int] = set()  # Zendesk scrubs these between the calls
        self.external_ids: dict[int, str] = {}  # what tickets/show_many shows per live ticket
        self.show_calls: list[list[int]] = []
        self._jobs: dict[str, tuple[str, list[int]]] = {}
        self._results: dict[str, JobStatus] = {}

    def destroy_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        assert 1 <= len(ticket_ids) <= 100
        self.destroy_calls.append(list(ticket_ids))
        if self.destroy_error is not None:
            raise self.destroy_error
        if self.missing_is_404 and not set(ticket_ids) <= self.live:
            raise NotFoundError("zendesk DELETE /api/v2/tickets/destroy_many: 404")
        return self._queue("destroy", ticket_ids)

    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        assert 1 <= len(ticket_ids) <= 100
        self.show_calls.append(list(ticket_ids))
        return {t: self.external_ids.get(t) for t in ticket_ids if t in self.live}

    def purge_deleted_tickets(self, ticket_ids: Sequence[int]) -> JobStatus:
        assert 1 <= len(ticket_ids) <= 100
        self.purge_calls.append(list(ticket_ids))
        self.trash -= self.scrub_before_purge
        if self.purge_error is not None:
            raise self.purge_error
        if self.missing_is_404 and not set(ticket_ids) <= self.trash:
            raise NotFoundError("zendesk DELETE /api/v2/deleted_tickets/destroy_many: 404")
        return self._queue("purge", ticket_ids)

    def wait_for_jobs(
        self, job_ids: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, JobStatus]:
        return {job_id: self._run(job_id) for job_id in job_ids}

    def _queue(self, kind: str, ticket_ids: Sequence[int]) -> JobStatus:
        job_id = f"{kind}{len(self._jobs) + 1}"
        self._jobs[job_id] = (kind, list(ticket_ids))
        return JobStatus(id=job_id, status="queued")

    def _run(self, job_id: str) -> JobStatus:
        if job_id in self._results:
            return self._results[job_id]
        kind, ids = self._jobs[job_id]
        if kind in self.stuck_jobs:
            return JobStatus(id=job_id, status="working")
        if kind in self.fail_jobs:
            job = JobStatus(id=job_id, status="failed")
        elif kind == "purge":
            self.purged |= self.trash & set(ids)
            self.trash -= set(ids)
            job = JobStatus(id=job_id, status="completed", results={"success": True})
        else:
            job = JobStatus(id=job_id, status="completed", results=self._destroy(ids))
        self._results[job_id] = job
        return job

    def _destroy(self, ids: list[int]) -> list[Any]:
        results: list[dict[str, Any]] = []
        for ticket_id in ids:
            if ticket_id in self.item_failures:
                status = self.item_failures[ticket_id]
                results.append({"id": ticket_id, "success": False, "status": status})
            elif ticket_id in self.trash:
                results.append({"id": ticket_id, "success": True, "status": "AlreadyDeleted"})
            elif ticket_id not in self.live:
                results.append({"id": ticket_id, "success": False, "status": "NotFound"})
            else:
                self.live.discard(ticket_id)
                self.trash.add(ticket_id)
                results.append({"id": ticket_id, "success": True, "status": "Deleted"})
        return results


def gone(outcomes: dict[int, DeletionOutcome]) -> set[int]:
    return {ticket_id for ticket_id, outcome in outcomes.items() if outcome.gone}


def test_deletes_and_purges_live_tickets() -> None:
    api = FakeDeletionApi({1, 2, 3})
    outcomes = BulkTicketDeleter(api).delete([1, 2, 3], purge=True)
    assert all(o.deleted and o.purged and not o.already_gone for o in outcomes.values())
    assert {o.purge_status for o in outcomes.values()} == {"completed"}
    assert api.live == set() and api.trash == set() and api.purged == {1, 2, 3}


def test_without_purge_tickets_stay_in_the_trash() -> None:
    api = FakeDeletionApi({1, 2})
    outcomes = BulkTicketDeleter(api).delete([1, 2], purge=False)
    assert gone(outcomes) == {1, 2} and api.trash == {1, 2}
    assert api.purge_calls == [] and all(o.purge_status is None for o in outcomes.values())


def test_404_split_isolates_missing_ids() -> None:
    api = FakeDeletionApi({1, 2, 4, 5, 7, 8})  # 3 and 6 no longer exist
    api.missing_is_404 = True
    outcomes = BulkTicketDeleter(api).delete([1, 2, 3, 4, 5, 6, 7, 8], purge=True)

    assert gone(outcomes) == set(range(1, 9))
    assert {t for t, o in outcomes.items() if o.already_gone} == {3, 6}
    assert not outcomes[3].deleted and outcomes[3].reason is None
    assert api.live == set() and api.purged == {1, 2, 4, 5, 7, 8}
    # Split in halves until each missing id stood alone.
    assert api.destroy_calls == [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1, 2, 3, 4],
        [1, 2],
        [3, 4],
        [3],
        [4],
        [5, 6, 7, 8],
        [5, 6],
        [5],
        [6],
        [7, 8],
    ]
    # Not known to be in the trash, so never sent to be purged.
    assert all(3 not in call and 6 not in call for call in api.purge_calls)


def test_per_item_results_already_gone_and_errors() -> None:
    api = FakeDeletionApi({1, 2}, trash={3})  # 3 already in the trash, 4 never existed
    api.item_failures[2] = "Forbidden"
    outcomes = BulkTicketDeleter(api).delete([1, 2, 3, 4], purge=True)

    assert outcomes[1].deleted and outcomes[1].purged
    assert not outcomes[2].gone and outcomes[2].reason is not None
    assert "Forbidden" in outcomes[2].reason and "\n" not in outcomes[2].reason
    assert outcomes[3].already_gone and not outcomes[3].deleted and outcomes[3].purged
    assert outcomes[4].already_gone and not outcomes[4].purged
    assert api.live == {2} and api.purged == {1, 3}
    assert api.purge_calls == [[1, 3]]  # only what Zendesk confirmed is in its trash


def test_failed_job_leaves_ids_not_deleted_with_a_reason() -> None:
    api = FakeDeletionApi({1, 2})
    api.fail_jobs.add("destroy")
    outcomes = BulkTicketDeleter(api).delete([1, 2], purge=True)
    assert gone(outcomes) == set()
    assert all(o.reason == "destroy_many job destroy1 failed" for o in outcomes.values())
    assert api.live == {1, 2} and api.purge_calls == []


def test_unfinished_job_is_not_taken_for_a_deletion() -> None:
    api = FakeDeletionApi({1})
    api.stuck_jobs.add("destroy")
    outcome = BulkTicketDeleter(api, timeout=0.1).delete([1], purge=False)[1]
    assert not outcome.gone
    assert outcome.reason == "destroy_many job destroy1 working (still running at timeout)"


def test_refused_call_is_a_reason_but_a_fatal_error_propagates() -> None:
    api = FakeDeletionApi({1, 2})
    api.destroy_error = InvalidRecordError("zendesk DELETE /api/v2/tickets/destroy_many: 422")
    outcomes = BulkTicketDeleter(api).delete([1, 2], purge=False)
    assert gone(outcomes) == set()
    assert outcomes[1].reason == "destroy_many refused: InvalidRecordError"

    api.destroy_error = AuthError("zendesk DELETE /api/v2/tickets/destroy_many: 401")
    with pytest.raises(AuthError):  # the run cannot go on; the caller aborts it
        BulkTicketDeleter(api).delete([1, 2], purge=False)


def test_purge_failure_is_reported_but_the_soft_delete_counts() -> None:
    api = FakeDeletionApi({1, 2})
    api.purge_error = ServerError("zendesk DELETE /api/v2/deleted_tickets/destroy_many: 503")
    outcomes = BulkTicketDeleter(api).delete([1, 2], purge=True)
    for outcome in outcomes.values():
        assert outcome.deleted and outcome.gone and outcome.reason is None
        assert not outcome.purged and outcome.purge_status == "error: ServerError"
    assert api.trash == {1, 2}

    failing = FakeDeletionApi({3})
    failing.fail_jobs.add("purge")
    outcome = BulkTicketDeleter(failing).delete([3], purge=True)[3]
    assert outcome.deleted and not outcome.purged and outcome.purge_status == "failed"


def test_purge_404_is_split_per_ticket() -> None:
    api = FakeDeletionApi({1, 2})
    api.missing_is_404 = True
    api.scrub_before_purge.add(2)
    outcomes = BulkTicketDeleter(api).delete([1, 2], purge=True)
    assert outcomes[1].purged and outcomes[2].purge_status == "not_found"
    assert outcomes[2].deleted and not outcomes[2].purged
    assert api.purge_calls == [[1, 2], [1], [2]]


def test_empty_input_makes_no_call() -> None:
    api = FakeDeletionApi({1})
    assert BulkTicketDeleter(api).delete([], purge=True) == {}
    assert api.destroy_calls == [] and api.purge_calls == []


def test_large_input_is_sent_in_batches_of_100_and_duplicates_once() -> None:
    api = FakeDeletionApi(range(250))
    outcomes = BulkTicketDeleter(api).delete([*range(250), 0, 1], purge=True)
    assert gone(outcomes) == set(range(250))
    assert [len(call) for call in api.destroy_calls] == [100, 100, 50]
    assert [len(call) for call in api.purge_calls] == [100, 100, 50]


def test_a_ticket_carrying_another_cases_external_id_is_never_deleted() -> None:
    api = FakeDeletionApi(live=range(1, 251), trash=[300])
    api.external_ids = {t: f"snapengage:case{t}" for t in range(1, 251)}
    api.external_ids[7] = "snapengage:case8"  # the ledger's id for case7 names case8's ticket
    api.external_ids[9] = "crm-4411"  # a ticket another integration created
    expected = {t: f"snapengage:case{t}" for t in [*range(1, 251), 300]}
    outcomes = BulkTicketDeleter(api).delete([*range(1, 251), 300], purge=True, expected=expected)
    # One show_many per 100 tickets, before any delete.
    assert [len(c) for c in api.show_calls] == [100, 100, 51]
    assert 7 in api.live and 9 in api.live
    for ticket_id in (7, 9):
        outcome = outcomes[ticket_id]
        assert outcome.mismatch and not outcome.gone and outcome.reason
        assert all(ticket_id not in call for call in api.destroy_calls)
    assert "crm-4411" not in (outcomes[9].reason or "")
    # Every other ticket is deleted; one in the trash (not shown live) is still found gone.
    assert all(outcomes[t].gone for t in [*range(1, 251), 300] if t not in (7, 9))
    assert outcomes[300].already_gone
