"""Recording what became of cases: Zendesk's job results mapped back to cases, ledger rows
for the tickets created, failures and terminal decisions, and the counts of the pass. Every
write goes through ``snapzen.ledger.store.outbox``; this part decides nothing about errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils

from snapzen.ledger.store import outbox
from snapzen.ledger.store.case_flags import flag_duplicates
from snapzen.policy.models import JobStatus
from snapzen.policy.transform import external_id
from snapzen.support.log import get_logger, one_line
from snapzen.sync.contracts import Clock, Counts, Sink
from snapzen.sync.results_check import check_results

log = get_logger("snapzen.sync.results")

# case id, status ('withheld' / 'ignored'), outcome, reason, subject ref, facts for the
# decision's ledger row
TerminalRow = tuple[Any, ...]


class Recorder:
    def __init__(
        self,
        db: sqlite_utils.Database,
        sink: Sink,
        counts: Counts,
        *,
        clock: Clock,
        run_id: str,
        actor: str,
        progress: Callable[[str, int], None],
        max_attempts: int | None = None,
    ) -> None:
        self.db, self.sink, self.counts, self.clock = db, sink, counts, clock
        self.run_id, self.actor, self.progress = run_id, actor, progress
        self.max_attempts = max_attempts  # a failure's attempt counts against it

    def synced(self, synced: dict[str, int]) -> None:
        """Cases whose tickets exist (case -> ticket id): 'synced', with their ledger rows."""
        if not synced:
            return
        rows, transfers = outbox.record_synced(
            self.db, synced, self.clock(), run_id=self.run_id, actor=self.actor
        )
        self.counts.created += len(synced)
        self.counts.decisions += rows
        self.counts.transfers += transfers
        self.progress("created", len(synced))

    def failed(self, failures: dict[str, str]) -> None:
        """Cases that failed (case -> error): retried by a later pass up to max_attempts."""
        if not failures:
            return
        self.counts.decisions += outbox.mark_failed(
            self.db,
            failures,
            self.clock(),
            max_attempts=self.max_attempts,
            run_id=self.run_id,
            actor=self.actor,
        )
        self.counts.failed += len(failures)
        for case_id, error in failures.items():
            log.warning("case_failed", case_id=case_id, error=error)

    def results(self, synced: dict[str, int], failures: dict[str, str]) -> None:
        self.synced(synced)
        self.failed(failures)

    def terminal(self, rows: Sequence[TerminalRow]) -> None:
        """Cases decided without a ticket: withheld (consent) or ignored (not a chat)."""
        if not rows:
            return
        self.counts.decisions += outbox.set_terminal_many(
            self.db, list(rows), self.clock(), run_id=self.run_id, actor=self.actor
        )
        for _, status, _, reason, *_ in rows:
            if status == "withheld":
                self.counts.withheld += 1
            else:
                self.counts.ignored += 1
            log.debug("case_terminal", status=status, reason=reason)

    def resolve_job(
        self, case_ids: Sequence[str], status: JobStatus
    ) -> tuple[dict[str, int], dict[str, str]]:
        """A finished job's per-index results mapped back to cases (``check_results``: a
        clean answer as it is, one in doubt read back by external_id), looking up the tickets
        of cases it has no usable result for: (synced case -> ticket id, failed case ->
        error). Writes nothing but the flag of a case found with several tickets."""
        checked = check_results(case_ids, status, self.sink.show_tickets)
        synced, failures = dict(checked.synced), dict(checked.failures)
        for case_id in checked.unknown:
            found = self.lookup(case_id)
            if found is not None:
                synced[case_id] = found
            else:
                failures[case_id] = one_line(
                    f"Zendesk job {status.id} {status.status} without a result for this ticket"
                    + (f": {status.message}" if status.message else "")
                )
        return synced, failures

    def lookup(self, case_id: str) -> int | None:
        """The ticket Zendesk holds for a case (by external id), the oldest if several."""
        # No try/except: the list endpoint answers an empty list for "none"; a 404 means a
        # wrong base URL or a missing role, and taking it as "absent" would resend the chat.
        ids = self.sink.find_ticket_ids(external_id(case_id))
        if len(ids) > 1:
            # Not a silent pick: the case is flagged for a person (`status` shows every
            # ticket id) and none is deleted; the ledger records the first one created.
            log.error("duplicate_tickets_found", case_id=case_id, ticket_ids=sorted(ids))
            flag_duplicates(self.db, case_id, ids, self.clock(), source="recovery")
        return min(ids) if ids else None


def log_future_dated(cases: Sequence[dict[str, Any]]) -> None:
    """Unfinished chats dated in the future: a clock, ours or SnapEngage's, is wrong, and the
    chat would otherwise wait silently."""
    _log_cases("chat_dated_in_the_future", cases)


def log_at_risk(at_risk: Sequence[dict[str, Any]]) -> None:
    """Chats at risk of SnapEngage's deletion."""
    _log_cases("deletion_deadline_at_risk", at_risk, "status")


def _log_cases(event: str, cases: Sequence[dict[str, Any]], *more: str, limit: int = 20) -> None:
    """One error line per case (the first ``limit``)."""
    for case in cases[:limit]:
        log.error(
            event, **{key: case[key] for key in ("case_id", "widget_id", "started_at", *more)}
        )
