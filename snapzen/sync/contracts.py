"""What the sync engine's parts share: the ports it talks through (source, sink), the pass's
counts and result, and the small value types handed between parts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from snapzen.policy.models import ImportTicket, JobStatus

# (widget id, first day, last day): a SnapEngage window.
Window = tuple[str, date, date]
CrashHook = Callable[[str], None]
# Wall-clock time (ledger timestamps, settle and grace periods) and monotonic seconds (waits,
# poll timing): both injected, so every timing rule can be driven by a fake clock.
Clock = Callable[[], datetime]
Monotonic = Callable[[], float]


class Source(Protocol):
    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Any]: ...


class Sink(Protocol):
    def submit_import(self, tickets: Sequence[ImportTicket]) -> JobStatus:
        """One create_many import job (paced on Zendesk's rate-limit headers by the client)."""
        ...

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]: ...
    def find_ticket_ids(self, external_id: str) -> list[int]: ...
    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        """Ticket id -> external_id of the tickets Zendesk has (results_check)."""
        ...

    def unfinished_jobs(self) -> list[JobStatus]:
        """Background jobs still queued or working (results_check.lookup_is_conclusive)."""
        ...


@dataclass
class Counts:
    fetched: int = 0
    new: int = 0
    created: int = 0
    withheld: int = 0
    ignored: int = 0
    failed: int = 0
    ambiguous: int = 0
    recovered: int = 0
    # Ledger rows this pass appended (docs/cli.md, "Counts"): decisions about cases (transfer,
    # sent, withheld, ignored, failed, ...), and of those the restricted transfers.
    decisions: int = 0
    transfers: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PassResult:
    run_id: str
    counts: Counts
    at_risk: list[dict[str, Any]] = field(default_factory=list)
    failed_total: int = 0
    unresolved: int = 0  # 'pushing' longer than zendesk.recovery_grace_seconds: an alert
    in_progress: int = 0  # 'pushing' inside the grace: work in progress, not a failure
    # Unfinished chats dated beyond the clock skew: they would wait for ever (a wrong clock).
    future_dated: list[dict[str, Any]] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False  # a stop request ended the pass early (cursors not advanced)
    # Recipient -> chats this pass sent under an Art. 49 derogation (warned about, always).
    derogations: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 1  # stopped before it finished (errors.EXIT_ABORTED): the rerun does the rest
        needs_a_look = self.at_risk or self.failed_total or self.unresolved or self.future_dated
        return 3 if needs_a_look else 0


@dataclass
class Batch:
    """One create_many request's cases, in ticket order (a job result's index is the
    position here)."""

    batch_id: str
    case_ids: list[str]
