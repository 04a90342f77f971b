"""`snapzen sync | run | backfill | retry | dismiss`: the commands that run passes.

Each parses its options, calls one function of snapzen.commands (service, backfill, retry)
and prints what it returns.
"""

from __future__ import annotations

import sys
import threading
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    Format,
    JsonFlag,
    SummaryOption,
    WaitOption,
    actor_name,
    command,
    echo_json,
    echo_json_line,
    known_widgets,
    opt,
    quiet,
    say,
    settings_from,
    wants_json,
)
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import clock, errors

# The commands (pydantic, sqlite_utils, structlog, requests) are imported inside the functions
# that run them: every `snapzen` invocation imports this module to register its commands, and
# those imports would add ~0.1 s to its start-up (tests/unit/cli/test_startup_imports.py).
app = typer.Typer()

WidgetOption = Annotated[
    list[str] | None, opt("ID", "Only this widget (repeatable).", "--widget", "-w")
]
CaseOption = Annotated[list[str], opt("ID", "A failed case id (repeatable).", "--case")]
DAY = ["%Y-%m-%d"]


@command(app)
def sync(
    config: ConfigOption = None,
    wait: WaitOption = False,
    widget: WidgetOption = None,
    fmt: SummaryOption = None,
    json_output: JsonFlag = False,
    actor: ActorOption = None,
) -> None:
    """One pass: recover, fetch finished chats, decide consent, import to Zendesk, record.

    Exit codes: 0 done, 1 aborted or interrupted (cursor not advanced), 2 configuration error,
    3 finished but some cases failed or are at risk of SnapEngage's deletion.

    Examples:

    ```
    $ snapzen sync
    $ snapzen -c /etc/snapzen.toml sync --wait --widget WIDGET_ID --actor cron
    ```
    """
    from snapzen.commands import service  # lazy: start-up time (see the imports above)
    from snapzen.commands.run import stop_on_signals
    from snapzen.support.settings import Needs

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    stop = threading.Event()
    # SIGTERM or Ctrl-C: the batch in hand finishes, the run is recorded 'interrupted' and the
    # process exits 1 (a second signal kills it at once).
    with stop_on_signals(stop):
        result = service.sync(
            settings, wait=wait, widgets=known_widgets(settings, widget),
            actor=actor_name(actor, settings), stop=stop.is_set,
        )  # fmt: skip
    if as_json:
        echo_json(summaries.pass_json(result))
    say(summaries.sync_lines(result, settings.pipeline.deadline_days, as_json))
    raise typer.Exit(result.exit_code)


@command(app)
def run(
    config: ConfigOption = None,
    every: Annotated[
        str | None, opt("INTERVAL", "Interval between passes, e.g. 15m (default: settings).")
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="table (default: the logs only) or json (one line per "
                     "pass, as `sync --format json` prints it, then one with the number of "
                     "passes)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:  # fmt: skip
    """Run as a service: one sync pass now, then one every interval, until SIGTERM/SIGINT.

    Each pass takes the writer lock for its own duration, so `backfill`, `retry` and manual
    `sync` get turns between passes. On SIGTERM or Ctrl-C the pass in hand finishes its batch
    and the process exits 0 within seconds.

    Examples:

    ```
    $ snapzen run
    $ snapzen run --every 5m --format json
    ```
    """
    from snapzen.commands.service import run_service  # lazy: start-up time
    from snapzen.support.settings import Needs

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    report = (lambda result: echo_json_line(summaries.pass_json(result))) if as_json else None
    stopped = run_service(settings, every, report=report)
    typer.echo(f"snapzen run: stopped after {stopped.passes} pass(es)", err=True)
    if as_json:
        echo_json_line({"stopped_after_passes": stopped.passes, "exit_code": stopped.exit_code})
    raise typer.Exit(stopped.exit_code)


_TODAY = clock.now().date()  # the examples' dates: inside SnapEngage's 60-day window
_WEEK_AGO, _YESTERDAY = _TODAY - timedelta(days=7), _TODAY - timedelta(days=1)


@command(
    app,
    epilog="Examples:\n\n```\n"
    f"$ snapzen backfill --since {_WEEK_AGO} --until {_YESTERDAY} --dry-run\n"
    f"$ snapzen backfill --since {_WEEK_AGO} --until {_YESTERDAY} --wait\n"
    "```",
)
def backfill(
    since: Annotated[datetime, opt("YYYY-MM-DD", "First day (UTC), inclusive.", formats=DAY)],
    until: Annotated[datetime, opt("YYYY-MM-DD", "Last day (UTC), inclusive.", formats=DAY)],
    config: ConfigOption = None,
    widget: WidgetOption = None,
    dry_run: Annotated[
        bool,
        opt("", "Show what would be created and withheld; write nothing anywhere.", "--dry-run"),
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    progress_every: Annotated[
        float,
        opt("SECONDS", "Seconds between JSON progress lines when stderr is not a terminal "
            "(0: one per change).", min=0.0),
    ] = 10.0,
    fmt: SummaryOption = None,
    json_output: JsonFlag = False,
    log_file: Annotated[
        Path | None,
        opt("FILE", "On a terminal, where log lines go while the progress bar is shown "
            "(appended; default: snapzen-backfill.log beside the ledger)."),
    ] = None,
    slice_seconds: Annotated[
        float,
        opt("SECONDS", "Run consecutive days in one pass under the writer lock until this long "
            "has passed, then drain, record those days and release the lock for the cron sync. "
            "One `runs` row per slice; 0 = one pass per day.", "--slice", min=0.0),
    ] = 60.0,
) -> None:  # fmt: skip
    """Fetch and import a date range, oldest day first; rerun the same command to resume.

    Days already finished are skipped. Days run in slices of about --slice seconds, each one
    pass (and one `runs` row) under the writer lock, released between slices so the cron sync
    keeps running in between. A slice's days are recorded as finished only when the slice
    completes; an interrupted slice is redone by the rerun (nothing is created twice). Dates
    must be within SnapEngage's retention and not in the future. Exit codes as for `sync`; 1
    also when interrupted (rerun to resume).

    A backfill keeps up to zendesk.backfill_max_jobs_in_flight import jobs running (30,
    Zendesk's whole cap per account; `sync` keeps 25): set
    SNAPZEN_ZENDESK__BACKFILL_MAX_JOBS_IN_FLIGHT=25 when another integration imports tickets
    into the account at the same time.
    """
    from snapzen.cli.progress import RichProgress  # lazy: start-up time (rich)
    from snapzen.commands import backfill_progress
    from snapzen.commands.backfill import plan_backfill, run_backfill
    from snapzen.commands.run import stop_on_signals
    from snapzen.support.settings import Needs, require_ledger_key, require_sync_settings

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    plan = plan_backfill(settings, since.date(), until.date(), known_widgets(settings, widget))
    require_sync_settings(settings)
    require_ledger_key(settings)
    on_terminal = sys.stderr.isatty() and not quiet()
    bar = RichProgress() if on_terminal else backfill_progress.JsonProgress(every=progress_every)
    logs_path = log_file or settings.ledger.path.parent / "snapzen-backfill.log"
    stop = threading.Event()
    logs = backfill_progress.log_file(logs_path) if on_terminal else nullcontext()
    with stop_on_signals(stop), logs as written:
        if written is not None:
            typer.echo(f"logs: {logs_path} (while the progress bar is shown)", err=True)
        result = run_backfill(
            settings, plan, actor=actor_name(actor, settings), wait=wait, dry_run=dry_run,
            stop=stop, progress=bar, slice_seconds=slice_seconds,
        )  # fmt: skip
    if written is not None and written.problems:
        typer.echo(f"{written.problems} warning(s)/error(s) logged in {logs_path}", err=True)
    if as_json:
        echo_json(summaries.backfill_json(result, plan))
    else:
        say(summaries.backfill_lines(result, plan, dry_run))
    raise typer.Exit(result.exit_code)


@command(app)
def retry(
    config: ConfigOption = None,
    case: Annotated[list[str] | None, opt("ID", "A failed case id (repeatable).")] = None,
    all_failed: Annotated[
        bool, opt("", "Every failed case with a payload.", "--all-failed")
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Reset failed cases (attempts exhausted) to pending and push them now.

    One pass under the writer lock, recorded in `runs` (kind retry) with the actor. Exit
    codes as for `sync`.

    Examples:

    ```
    $ snapzen retry --all-failed
    $ snapzen retry --case CASE_ID --wait
    ```
    """
    from snapzen.commands.retry import retry as retry_cases  # lazy: start-up time

    if bool(case) == all_failed:
        raise errors.ConfigError("give either --case ID (repeatable) or --all-failed")
    as_json = wants_json(fmt, json_output)
    settings = settings_from(config)
    cases = None if all_failed else list(case or [])
    outcome = retry_cases(settings, cases, actor=actor_name(actor, settings), wait=wait)
    result = outcome.result
    if as_json:
        echo_json({
            "run_id": result.run_id if result is not None else None,
            "requeued": list(outcome.requeued),
            **(result.counts.as_dict() if result is not None else {}),
            "exit_code": outcome.exit_code,
        })  # fmt: skip
    elif not outcome.requeued:
        typer.echo("retry: no failed case to retry")
    elif result is not None:
        typer.echo(
            f"retry {result.run_id}: requeued {len(outcome.requeued)}, created "
            f"{result.counts.created}, failed again {result.counts.failed}"
        )
        if result.failed_total:
            typer.echo(f"{result.failed_total} case(s) failed; see `snapzen status`", err=True)
    raise typer.Exit(outcome.exit_code)


@command(app)
def dismiss(
    case: CaseOption,
    reason: Annotated[str, opt("TEXT", "Why it will never be sent (kept in the ledger).")],
    config: ConfigOption = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Give up on failed cases for good: they become `ignored` with your reason, their raw
    payload is purged and a `runs` row records who decided. Use when `retry` cannot help
    (e.g. a payload without a usable start time); afterwards `sync` stops exiting 3 for them.

    Examples:

    ```
    $ snapzen dismiss --case CASE_ID --reason 'no start time in the payload'
    $ snapzen dismiss --case CASE_ID --reason 'test chat' --format json
    ```
    """
    from snapzen.commands.retry import dismiss as dismiss_cases  # lazy: start-up time

    as_json = wants_json(fmt, json_output)
    settings = settings_from(config)
    who = actor_name(actor, settings)
    run_id = dismiss_cases(settings, case, reason=reason, actor=who, wait=wait)
    if as_json:
        echo_json({"run_id": run_id, "dismissed": list(case), "actor": who})
    else:
        typer.echo(f"dismiss {run_id}: {len(case)} case(s) marked ignored")
