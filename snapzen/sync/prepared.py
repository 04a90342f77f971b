"""Ready cases with their preparation (ticket, terminal outcome or error), for the batches.

Without a prepare worker, cases are selected and prepared on the pass's thread, from the case
staging validated when the stored text is the one it staged (parse once). With one
(``prepare_worker``), the worker prepares the next batches in a second process while the pass
stages, posts and polls: ``take`` hands out what it answered. Selected cases are reserved (no
other selection takes them); one re-staged since (``restaged``) is dropped and selected again.
The worker never writes, so giving it up at any point loses nothing: what it was asked for is
prepared here instead, in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.policy.models import SnapEngageCase
from snapzen.support.log import get_logger, one_line
from snapzen.sync.prepare import CasePreparer, Prepared, Staged
from snapzen.sync.prepare_worker import PrepareWorker, RequestFailed, WorkerError
from snapzen.sync.tuning import Tuning

log = get_logger("snapzen.sync.prepared")

Ready = tuple[outbox.ReadyCase, Prepared]  # a case taken for a batch, and its preparation


class ParsedCache:
    """Cases staging validated, kept for preparing them moments later (parse once): used only
    when the stored raw JSON is the very text staged, bounded (oldest dropped first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cases: dict[str, tuple[str, SnapEngageCase, str | None]] = {}

    def keep(self, case_id: str, raw_json: str, case: SnapEngageCase, subject: str | None) -> None:
        self._cases.pop(case_id, None)  # re-staged: now the newest
        self._cases[case_id] = (raw_json, case, subject)
        if len(self._cases) > self.size:
            del self._cases[next(iter(self._cases))]

    def take(self, case_id: str, raw_json: str) -> tuple[SnapEngageCase, str | None] | None:
        kept = self._cases.pop(case_id, None)
        return (kept[1], kept[2]) if kept is not None and kept[0] == raw_json else None

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._cases

    def ids(self) -> list[str]:
        return list(self._cases)


class PreparedCases:
    def __init__(
        self,
        db: sqlite_utils.Database,
        preparer: CasePreparer,
        *,
        batch_size: int,
        settled_before: Callable[[], datetime],
        tuning: Tuning,
        worker: PrepareWorker | None = None,
    ) -> None:
        self.db = db
        self.preparer = preparer
        self.batch_size = batch_size
        self.settled_before = settled_before
        self.ahead_batches = tuning.prepare_ahead_batches
        self.parsed = ParsedCache(tuning.parsed_cache_size)
        self.worker = worker  # None once given up (or never given): prepared here
        self._prepared: deque[Ready] = deque()  # answered, in selection order
        self._requested: deque[list[outbox.ReadyCase]] = deque()  # asked, oldest first
        self._reserved: set[str] = set()  # case ids in either
        self._stale: set[str] = set()  # re-staged since selected: their preparation dropped

    # ------------------------------------------------------------ staging (parse once)

    def stage(self, widget: str, raw: object) -> Staged:
        """``CasePreparer.stage``, on a reader thread. The validated case is kept only when
        preparing here; with a worker it would only hold memory."""
        staged = self.preparer.stage(widget, raw)
        return staged if self.worker is None else Staged(staged.row, None)

    def stored(self, page: Iterable[Staged]) -> list[outbox.StagedCase]:
        """The rows of a staged page, to store; their validated cases kept (parse once), and
        cases prepared ahead that the page re-stages dropped from what was prepared."""
        rows = []
        for staged in page:
            row = staged.row
            if staged.case is not None and self.worker is None:
                self.parsed.keep(row.case_id, row.raw_json, staged.case, row.subject_ref)
            if row.case_id in self._reserved:
                self._stale.add(row.case_id)
            rows.append(row)
        return rows

    def prepare_here(self, ready: outbox.ReadyCase) -> Prepared:
        """A ready case prepared on this thread, from its kept case when the stored text is
        the one staged, else decoded from the stored payload as the worker does."""
        raw_json = ready.raw_json
        if raw_json is None:  # selected for the worker, which reads payloads itself
            raw_json = outbox.stored_payload(self.db, ready.case_id)
            if raw_json is None:
                return Prepared(
                    ready.case_id, error="invalid SnapEngage case: its stored payload is gone"
                )
        kept = self.parsed.take(ready.case_id, raw_json)
        if kept is not None:
            return self.preparer.prepare(ready.case_id, ready.widget_id, *kept)
        return self.preparer.prepare_stored(ready.case_id, ready.widget_id, raw_json)

    # ------------------------------------------------------------ taking

    @property
    def requests_out(self) -> int:
        """Requests asked of the worker and not yet taken."""
        return len(self._requested)

    @property
    def ready_ahead(self) -> int:
        """Cases prepared ahead (answered or given back) and not yet taken."""
        return len(self._prepared)

    def reserved(self, case_id: str) -> bool:
        """The case is selected for a batch to come (asked of the worker, or prepared)."""
        return case_id in self._reserved

    def take(self, limit: int, exclude: Sequence[str], *, wait: bool = True) -> list[Ready] | None:
        """Up to ``limit`` ready cases with their preparation, oldest selected first, none of
        ``exclude``; [] when nothing is ready. Without ``wait``: None (nothing taken) when it
        would mean waiting for a started worker; while the worker is still starting, this
        thread prepares what it was not asked for rather than wait."""
        taken: list[Ready] = []
        while len(taken) < limit:
            if self._prepared:
                pair = self._prepared.popleft()
                self._reserved.discard(pair[0].case_id)
                if pair[0].case_id in self._stale:
                    self._stale.discard(pair[0].case_id)
                    continue
                taken.append(pair)
                continue
            busy = [*exclude, *(item.case_id for item, _ in taken)]
            if self.worker is None:
                taken.extend(self._select_here(limit - len(taken), busy))
                break
            if not self._requested:
                self._request_ahead(busy)
                if self.worker is None or self._prepared:
                    continue  # it failed (this thread prepares now), or answered meanwhile
                if not self._requested:
                    break
            if self.worker.stuck():
                self._worker_failed(WorkerError("prepare worker gave no answer in time"))
                continue
            answer_in = self.worker.has_answer()
            if not wait and not answer_in and self.worker.answered:
                self.give_back(taken)
                return None
            if not self.worker.answered and not answer_in:
                here = self._select_here(limit - len(taken), [*busy, *self._reserved])
                if here:
                    taken.extend(here)
                    continue
            self._receive()
        if self.worker is not None:
            self._request_ahead([*exclude, *(item.case_id for item, _ in taken)])
        return taken

    def give_back(self, pairs: Sequence[Ready]) -> None:
        """Cases taken but not used in this batch: first in line for the next."""
        for pair in reversed(pairs):
            self._prepared.appendleft(pair)
            self._reserved.add(pair[0].case_id)

    def drop(self, *, collect: bool = True) -> None:
        """Forget what was prepared ahead (end of the pass): those cases are still pending,
        untouched. Answers the worker still owes are read and dropped, so that a next pass
        sharing it (a backfill's slices) gets only its own; not on Ctrl-C or a crash
        (``collect`` False: no waiting then), where the worker is given up instead."""
        if self.worker is not None and self._requested:
            if not collect:
                self.worker.abandon()
            else:
                try:
                    self.worker.discard_answers()
                except WorkerError as exc:
                    log.warning("prepare_worker_failed", error=one_line(exc))
                    self.worker.abandon()
        self._prepared.clear()
        self._requested.clear()
        self._reserved.clear()
        self._stale.clear()

    # ------------------------------------------------------------ the worker

    def _select_here(self, limit: int, exclude: Sequence[str]) -> list[Ready]:
        ready = outbox.ready_cases(self.db, self.settled_before(), limit, exclude=exclude)
        return [(item, self.prepare_here(item)) for item in ready]

    def _request_ahead(self, exclude: Sequence[str]) -> None:
        """Keep ``ahead_batches`` batches' worth of cases prepared or being prepared by the
        worker; until it first answers (still starting) only one, and this thread prepares
        the rest: reserving them all left the first POST waiting ~0.4 s for its start."""
        worker = self.worker
        if worker is None:
            return
        size = self.batch_size
        have = len(self._prepared) + sum(len(chunk) for chunk in self._requested)
        want = (self.ahead_batches if worker.answered else 1) * size - have
        if want <= 0 or (have and want < size):
            return  # asked again once a whole batch has been taken: fewer, fuller queries
        # Without payloads: the worker reads them from the database (~4 KB a case not read,
        # and not held here, bench/RESULTS.md v7).
        ready = outbox.ready_cases(
            self.db,
            self.settled_before(),
            want,
            exclude=[*self._reserved, *exclude],
            with_raw=False,
        )
        for offset in range(0, len(ready), size):
            chunk = ready[offset : offset + size]
            try:
                worker.submit([(item.case_id, item.widget_id) for item in chunk])
            except WorkerError as exc:
                self._worker_failed(exc)
                return
            self._requested.append(chunk)
            self._reserved.update(item.case_id for item in chunk)

    def _receive(self) -> None:
        """The worker's answer to the oldest request (prepared here instead if the worker
        refused that request, or failed)."""
        chunk = self._requested.popleft()
        worker = self.worker
        assert worker is not None, "a request is out only while the worker is in use"
        try:
            results = worker.receive()
            if [prepared.case_id for prepared in results] != [item.case_id for item in chunk]:
                raise WorkerError("prepare worker answered for other cases")
        except RequestFailed as exc:
            log.warning("prepare_worker_request_failed", cases=len(chunk), error=one_line(exc))
            results = [self.prepare_here(item) for item in chunk]
        except WorkerError as exc:
            self._requested.appendleft(chunk)
            self._worker_failed(exc)
            return
        self._prepared.extend(zip(chunk, results, strict=True))

    def _worker_failed(self, exc: WorkerError) -> None:
        """Stop using the worker for the rest of the pass; what it was asked for is prepared
        here, in order. Nothing is lost: the worker never writes."""
        log.warning("prepare_worker_failed", error=one_line(exc))
        if self.worker is not None:
            self.worker.abandon()  # answers may be out of step: nobody uses it again
        self.worker = None
        while self._requested:
            chunk = self._requested.popleft()
            self._prepared.extend((item, self.prepare_here(item)) for item in chunk)
