"""Ready cases with their preparation (ticket, terminal outcome or error), for the batches.

Cases are selected and prepared on the pass's thread, from their stored payload, when a
batch is filled. A case taken but not used in its batch (a retry that must go alone) is given
back and leads the next one; one re-staged meanwhile (``stored``) is dropped and selected
again, so what is sent is always what is stored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import sqlite_utils

from snapzen.ledger import outbox
from snapzen.sync.prepare import CasePreparer, Prepared

Ready = tuple[outbox.ReadyCase, Prepared]  # a case taken for a batch, and its preparation


class PreparedCases:
    def __init__(
        self,
        db: sqlite_utils.Database,
        preparer: CasePreparer,
        *,
        batch_size: int,
        settled_before: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.preparer = preparer
        self.batch_size = batch_size
        self.settled_before = settled_before
        self._given_back: deque[Ready] = deque()  # taken, not used: first in line
        self._stale: set[str] = set()  # re-staged since given back: their preparation dropped

    def stage(self, widget: str, raw: object) -> outbox.StagedCase:
        """``CasePreparer.stage``, on a reader thread."""
        return self.preparer.stage(widget, raw)

    def stored(self, page: Iterable[outbox.StagedCase]) -> list[outbox.StagedCase]:
        """The rows of a staged page, to store; a case given back that the page re-stages is
        prepared again from what is stored."""
        rows = list(page)
        held = {item.case_id for item, _ in self._given_back}
        self._stale.update(row.case_id for row in rows if row.case_id in held)
        return rows

    def prepare(self, ready: outbox.ReadyCase) -> Prepared:
        """A ready case prepared from its stored payload."""
        if ready.raw_json is None:
            return Prepared(
                ready.case_id, error="invalid SnapEngage case: its stored payload is gone"
            )
        return self.preparer.prepare_stored(ready.case_id, ready.widget_id, ready.raw_json)

    def take(self, limit: int, exclude: Sequence[str]) -> list[Ready]:
        """Up to ``limit`` ready cases with their preparation, those given back first, none
        of ``exclude``; [] when nothing is ready."""
        taken: list[Ready] = []
        while self._given_back and len(taken) < limit:
            pair = self._given_back.popleft()
            if pair[0].case_id in self._stale:
                self._stale.discard(pair[0].case_id)
                continue
            taken.append(pair)
        if len(taken) < limit:
            busy = [
                *exclude,
                *(item.case_id for item, _ in taken),
                *(item.case_id for item, _ in self._given_back),
            ]
            ready = outbox.ready_cases(
                self.db, self.settled_before(), limit - len(taken), exclude=busy
            )
            taken.extend((item, self.prepare(item)) for item in ready)
        return taken

    def give_back(self, pairs: Sequence[Ready]) -> None:
        """Cases taken but not used in this batch: first in line for the next."""
        for pair in reversed(pairs):
            self._given_back.appendleft(pair)

    def drop(self) -> None:
        """Forget what was given back (end of the pass): those cases are still pending."""
        self._given_back.clear()
        self._stale.clear()
