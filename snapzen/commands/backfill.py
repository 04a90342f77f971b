"""`snapzen backfill`: fetch and push a date range, oldest UTC day first.

- A *window* is one widget on one day. Consecutive days run as one pass per *slice* (`runs`
  row, kind 'backfill', with the actor and the days it covered) under the writer lock: the
  pass takes day after day (each day's widgets fetched concurrently) until ``slice_seconds``
  have passed, pushing as cases become ready without draining between days, then sends the
  rest and records the slice's days. The lock is released between slices and left free for a
  moment, so the cron `sync` (or `run`) gets its turns during a long backfill.
  ``slice_seconds=0`` is one pass per day.
- A slice with days after it does not wait for its last import jobs: they stay 'pushing' with
  their job ids, and the next pass's recovery (the next slice, or a sync in between) polls
  them with its own (``Pipeline.recover``), so Zendesk's job cap stays full across slices.
  Only the last slice drains. The job time learned carries from slice to slice.
- Finished windows are recorded in `backfill_windows` (at the end of a slice, only when its
  pass was not interrupted) and skipped by a rerun: after Ctrl-C or a crash, the same command
  resumes, redoing the interrupted slice's days (idempotent). Only days before today are
  recorded, since today's chats are still arriving.
- Exactly-once comes from the outbox (one ticket per case id, whoever pushes it), so a backfill
  and a sync over the same days never create a ticket twice.
- ``dry_run`` works on a throwaway copy of the ledger with a sink that records instead of
  posting: it reads SnapEngage, and writes nothing to Zendesk or to the real ledger.
"""

from __future__ import annotations

import functools
import itertools
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from snapzen.commands import service
from snapzen.commands.backfill_progress import Tally
from snapzen.commands.clients import Clients, clients_from
from snapzen.commands.copies import backup_ledger
from snapzen.commands.run import LOCK_POLL_SECONDS, patiently
from snapzen.ledger.store.case_status import CaseStatus, sql_list
from snapzen.ledger.store.cursor_rules import UTC_TIMEZONE, backfill_day_finished, oldest_held
from snapzen.ledger.store.db import ensure_ledger, open_db, open_ledger
from snapzen.ledger.store.outbox import mark_backfill_finished
from snapzen.policy.models import EncodedTicket, ImportTicket, JobResult, JobStatus
from snapzen.support import clock, errors
from snapzen.support.log import get_logger
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.sync.jobs import RECENT
from snapzen.sync.pipeline import Counts, CrashHook, PassResult, Pipeline

log = get_logger("snapzen.commands.backfill")

# Pause between slices with the lock released: a `sync --wait` or `run` polls the lock every
# 0.05 s, so this is long enough for it to take its turn and short enough not to slow us.
TURN_SECONDS = 0.2

# A slice (one pass under the lock) takes further days until it has run this long; then it
# drains and releases the lock. The cron sync waits at most about this long (plus a drain).
SLICE_SECONDS = 60.0

# Cases decided against sending (the dry run reports them).
_DECIDED_UNSENT = sql_list((CaseStatus.WITHHELD, CaseStatus.IGNORED))


@dataclass(frozen=True)
class BackfillPlan:
    since: date
    until: date
    widgets: list[str]
    today: date

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]

    @property
    def windows(self) -> list[tuple[str, str]]:
        """(widget, day) pairs in the order they run: oldest day first, nearest SnapEngage's
        deletion."""
        return [(w, d.isoformat()) for d in self.days for w in self.widgets]


def plan_backfill(
    settings: Settings,
    since: date,
    until: date,
    widgets: Sequence[str] | None = None,
    *,
    today: date | None = None,
) -> BackfillPlan:
    """Validate the range before any network call; ConfigError (exit 2) says what is wrong."""
    chosen = service.chosen_widgets(settings, widgets)
    today = today or clock.today()
    oldest = oldest_held(today, settings.snapengage.retention_days)
    if since > until:
        raise errors.ConfigError(f"--since {since} is after --until {until}")
    if until > today:
        raise errors.ConfigError(f"--until {until} is in the future (today is {today} UTC)")
    if since < oldest:
        raise errors.ConfigError(
            f"--since {since} is older than SnapEngage keeps chats "
            f"({settings.snapengage.retention_days} days): the oldest day it still holds is "
            f"{oldest}"
        )
    return BackfillPlan(since=since, until=until, widgets=chosen, today=today)


# ---------------------------------------------------------------- finished windows


def finished_windows(db: sqlite_utils.Database, plan: BackfillPlan) -> set[tuple[str, str]]:
    if "backfill_windows" not in db.table_names():
        return set()  # a read-only open of a database from before the migration
    rows = db.execute(
        "SELECT widget_id, day FROM backfill_windows WHERE day BETWEEN ? AND ?",
        (plan.since.isoformat(), plan.until.isoformat()),
    ).fetchall()
    wanted = set(plan.windows)
    return {(r[0], r[1]) for r in rows} & wanted


# ---------------------------------------------------------------- progress + result


class BackfillProgress(Protocol):
    """What the CLI shows (snapzen.commands.backfill_progress); the library only reports.
    ``tick``'s what: "fetched" / "created" (cases, as they happen), "window" (a widget-day
    read to its end; recorded as finished only when its slice completes: window_done)."""

    def start(self, total: int, skipped: int) -> None: ...
    def tick(self, what: str, n: int) -> None: ...
    def day_started(self, day: date) -> None: ...  # the pass began reading this day
    def window_done(self, day: date, widgets: Sequence[str], counts: Counts) -> None: ...
    def finish(self) -> None: ...


@dataclass
class DryRunReport:
    would_create: list[str] = field(default_factory=list)  # case ids
    would_withhold: dict[str, str] = field(default_factory=dict)  # case id -> reason
    would_ignore: dict[str, str] = field(default_factory=dict)  # case id -> reason


@dataclass
class BackfillResult:
    plan: BackfillPlan
    windows_total: int
    windows_skipped: int
    windows_done: int = 0
    counts: Counts = field(default_factory=Counts)
    interrupted: bool = False
    last: PassResult | None = None
    dry_run: DryRunReport | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return errors.EXIT_ABORTED
        return self.last.exit_code if self.last is not None else errors.EXIT_OK


# ---------------------------------------------------------------- the run


def run_backfill(
    settings: Settings,
    plan: BackfillPlan,
    *,
    actor: str | None = None,
    wait: bool = False,
    dry_run: bool = False,
    clients: Clients | None = None,
    stop: threading.Event | None = None,
    progress: BackfillProgress | None = None,
    crash_hook: CrashHook | None = None,
    turn_seconds: float = TURN_SECONDS,
    slice_seconds: float = SLICE_SECONDS,
) -> BackfillResult:
    """Run (or preview) the plan; raises LockHeld when the first slice cannot get the lock
    and ``wait`` is False, like `sync`."""
    stop, progress = stop or threading.Event(), progress or Tally()
    clients = clients or clients_from(backfill_settings(settings))  # asks for UTC days
    if dry_run:
        return _dry_run(settings, plan, clients, stop, progress, slice_seconds)
    settings = backfill_settings(settings)
    require_ledger_key(settings)  # before the progress bar starts: exit 2 cleanly
    with closing(open_ledger(settings.ledger, read_only=True)) as db:  # none: refused
        done = finished_windows(db, plan)
    result = BackfillResult(plan, windows_total=len(plan.windows), windows_skipped=len(done))
    progress.start(result.windows_total, result.windows_skipped)
    remaining = [
        (day, widgets)
        for day in plan.days
        if (widgets := [w for w in plan.widgets if (w, day.isoformat()) not in done])
    ]
    took: deque[float] = deque(maxlen=RECENT)  # the job time learned, slice to slice
    try:
        while remaining and not stop.is_set():
            if result.last is not None:
                stop.wait(turn_seconds)  # the lock is free: a waiting sync's turn
            taken: list[tuple[date, list[str]]] = []
            details = {"backfill": {"days": [], "slice_seconds": slice_seconds}}
            run_slice = functools.partial(
                service.run_pass,
                settings,
                "backfill",
                _slice_body(
                    remaining, taken, details, plan.today, slice_seconds, progress.day_started, took
                ),
                actor=actor,
                clients=clients,
                crash_hook=crash_hook,
                progress=progress.tick,
                stop=stop.is_set,
                details=details,
            )
            if result.last is None and not wait:
                # Same contract as `sync`: another run holds the lock → say so and exit 0.
                last: PassResult | None = run_slice()
            else:
                # Later slices wait for their turn (the cron sync may be in between), in short
                # waits so that Ctrl-C is still noticed.
                attempt = functools.partial(run_slice, wait=True, lock_timeout=LOCK_POLL_SECONDS)
                last = patiently(attempt, stop, None)
            if last is None:
                break
            result.last = last
            for name, value in last.counts.as_dict().items():
                setattr(result.counts, name, getattr(result.counts, name) + value)
            if last.interrupted:
                break  # nothing of this slice was recorded: redone on rerun
            for day, widgets in taken:
                result.windows_done += len(widgets)
                progress.window_done(day, widgets, result.counts)  # totals so far
            remaining = remaining[len(taken) :]
        result.interrupted = bool(remaining)
    finally:
        progress.finish()
    log.info(
        "backfill_finished",
        windows_done=result.windows_done,
        windows_skipped=result.windows_skipped,
        interrupted=result.interrupted,
        **result.counts.as_dict(),
    )
    return result


def _dry_run(
    settings: Settings,
    plan: BackfillPlan,
    clients: Clients,
    stop: threading.Event,
    progress: BackfillProgress,
    slice_seconds: float,
) -> BackfillResult:
    """The run on a throwaway copy of the ledger, with a sink that only records."""
    sink = RecordingSink()
    with _throwaway_copy(settings) as dry:
        before = _decided_unsent(dry.ledger.path)
        result = run_backfill(
            dry,
            plan,
            actor="dry-run",
            wait=True,
            stop=stop,
            progress=progress,
            turn_seconds=0,
            clients=Clients(source=clients.source, sink=sink),
            slice_seconds=slice_seconds,
        )
        report = DryRunReport(
            would_create=[e.removeprefix("snapengage:") for e in sink.external_ids]
        )
        for case_id, (status, reason) in _decided_unsent(dry.ledger.path).items():
            if case_id not in before:
                withheld = status == CaseStatus.WITHHELD
                (report.would_withhold if withheld else report.would_ignore)[case_id] = reason or ""
    result.dry_run = report
    return result


def backfill_settings(settings: Settings) -> Settings:
    """``settings`` for a backfill's passes: ``zendesk.backfill_max_jobs_in_flight`` import
    jobs in flight instead of ``max_jobs_in_flight`` (the cron sync's, with headroom), and
    SnapEngage asked for UTC days whatever ``snapengage.timezone`` says.

    A window is one UTC day and is recorded finished as such; asked in another timezone,
    SnapEngage returned that zone's day, and the hours between local and UTC midnight were
    never read (59 of 761 chats in one test) while the day was still marked finished."""
    zendesk = settings.zendesk.model_copy(
        update={"max_jobs_in_flight": settings.zendesk.backfill_max_jobs_in_flight}
    )
    snapengage = settings.snapengage.model_copy(update={"timezone": UTC_TIMEZONE})
    return settings.model_copy(update={"zendesk": zendesk, "snapengage": snapengage})


def _slice_body(
    remaining: Sequence[tuple[date, list[str]]],
    taken: list[tuple[date, list[str]]],
    details: dict[str, Any],
    today: date,
    slice_seconds: float,
    day_started: Callable[[date], None],
    took: deque[float],
) -> Callable[[Pipeline], PassResult]:
    """One pass over as many of ``remaining`` days (oldest first) as fit in ``slice_seconds``
    (at least one). Each day's widgets are fetched page by page, full batches pushed as pages
    arrive (Pipeline.fetch_window_groups);
    jobs stay in flight across days and partial batches carry over to the next day, so
    nothing waits for a drain. Then push_ready sends the rest (and drains, in the last slice
    only), and only an uninterrupted pass records its days (days before ``today``) in
    backfill_windows. ``taken`` and ``details`` tell the caller
    and the `runs` row which days the pass covered."""

    def body(pipeline: Pipeline) -> PassResult:
        started = time.monotonic()
        taken.clear()
        pipeline.jobs.took = took  # no discovery polls after the first slice
        pipeline.recover()  # the previous slice's jobs still running: polled as this one's

        def days() -> Iterator[list[tuple[str, date, date]]]:
            # Taken one at a time, so a slice ends (or a stop is seen) between days.
            for day, widgets in remaining:
                if taken and time.monotonic() - started >= slice_seconds:
                    return
                if pipeline.interrupted:
                    return
                taken.append((day, widgets))
                details["backfill"]["days"].append(day.isoformat())
                day_started(day)
                yield [(widget, day, day) for widget in widgets]

        fetched = pipeline.fetch_window_groups(days())
        # A slice with days after it does not wait for its last jobs: it hands them, 'pushing'
        # with their job ids, to the next pass's recovery (the next slice, or a sync between).
        pipeline.push_ready(drain=len(taken) == len(remaining))
        details["backfill"]["jobs_handed_over"] = len(pipeline.jobs.flying)
        # Only whole UTC days are finished: the windows were asked in UTC (backfill_settings).
        timezone, interrupted = pipeline.settings.snapengage.timezone, pipeline.interrupted
        for day, widgets in taken:
            if backfill_day_finished(day, today, timezone=timezone, interrupted=interrupted):
                mark_backfill_finished(
                    pipeline.db,
                    {widget: fetched.get((widget, day, day), 0) for widget in widgets},
                    day,
                    run_id=pipeline.run_id,
                    actor=pipeline.actor,
                    now=pipeline.clock(),
                )
        return pipeline.result()

    return body


# ---------------------------------------------------------------- dry run


class RecordingSink:
    """A Zendesk stand-in for --dry-run: every import 'succeeds' at once and is only recorded.
    Ticket ids are negative so nothing could mistake them for real ones."""

    def __init__(self) -> None:
        # Only the external ids are kept (not the tickets with their transcripts), and a job
        # is forgotten once read: a dry run over a large range stays in bounded memory.
        self.external_ids: list[str] = []
        self.jobs: dict[str, JobStatus] = {}
        self._ids = itertools.count(1)
        # A counter, not len(self.jobs): the POST's thread and the pass may call at once, and
        # jobs are forgotten once read, so a length could hand out the same id twice.
        self._job_ids = itertools.count(1)

    def submit_import(self, tickets: Sequence[ImportTicket | EncodedTicket]) -> JobStatus:
        results = []
        for index, ticket in enumerate(tickets):
            self.external_ids.append(ticket.external_id)
            results.append(JobResult(index=index, id=-next(self._ids)))
        job = JobStatus(
            id=f"dry-run-{next(self._job_ids)}",
            status="completed",
            total=len(tickets),
            progress=len(tickets),
            results=results,
        )
        self.jobs[job.id] = job
        return job

    def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {job_id: self.jobs.pop(job_id) for job_id in job_ids if job_id in self.jobs}

    def find_ticket_ids(self, external_id: str) -> list[int]:
        return []

    def show_tickets(self, ticket_ids: Sequence[int]) -> dict[int, str | None]:
        # Ticket -n is the n-th import recorded (ids count down from -1).
        return {
            t: self.external_ids[-t - 1] for t in ticket_ids if 0 < -t <= len(self.external_ids)
        }

    def unfinished_jobs(self) -> list[JobStatus]:
        return []  # every job finishes at once


@contextmanager
def _throwaway_copy(settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a temporary copy of the ledger (or an empty one), so the preview
    sees what is already synced, skips finished windows, and leaves the real file untouched."""
    with tempfile.TemporaryDirectory(prefix="snapzen-dry-run-") as tmp:
        copy = Path(tmp) / "dry-run.db"
        ensure_ledger(settings.ledger.path)
        backup_ledger(settings.ledger.path, copy)
        dry = settings.model_copy(deep=True)
        dry.ledger.path = copy
        dry.zendesk.job_poll_seconds = 0.001  # the recording sink finishes jobs at once
        yield dry


def _decided_unsent(path: Path) -> dict[str, tuple[str, str | None]]:
    """Cases decided against sending (withheld, ignored): status and reason, by case id."""
    if not path.exists():
        return {}
    with closing(open_db(path, read_only=True)) as db:
        rows = db.execute(
            f"SELECT case_id, status, reason FROM cases WHERE status IN {_DECIDED_UNSENT}"
        )
        return {case_id: (status, reason) for case_id, status, reason in rows}
