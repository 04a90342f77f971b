"""`snapzen sync | run | backfill | retry | dismiss`: the commands that run passes.

Each parses its options, calls one function of snapzen.commands (service, run_service,
backfill, retry, dismiss) and prints what it returns.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    SummaryFormat,
    SummaryFormatOption,
    WaitOption,
    actor_name,
    echo_json,
    echo_json_line,
    handle_errors,
    known_widgets,
    pass_summary,
    quiet,
    settings_from,
    summary_json,
)
from snapzen.commands.ledger_terms import warning_line  # light: a sentence
from snapzen.support import clock, errors

# The commands (pydantic, sqlite_utils, structlog, requests) are imported inside the functions
# that run them: every `snapzen` invocation imports this module to register its commands, and
# those imports would add ~0.1 s to its start-up (tests/unit/cli/test_startup_imports.py).
if TYPE_CHECKING:
    from snapzen.cli.progress import CountingFile
    from snapzen.commands.backfill import BackfillProgress

app = typer.Typer()

WidgetOption = Annotated[
    list[str] | None,
    typer.Option("--widget", "-w", metavar="ID", help="Only this widget (repeatable)."),
]


@app.command()
@handle_errors
def sync(
    config: ConfigOption = None,
    wait: WaitOption = False,
    widget: WidgetOption = None,
    fmt: SummaryFormatOption = None,
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
    from snapzen.commands.scheduler import stop_on_signals
    from snapzen.support.settings import Needs

    as_json = summary_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    stop = threading.Event()
    # SIGTERM or Ctrl-C: the batch in hand finishes, the run is recorded 'interrupted' and the
    # process exits 1 (a second signal kills it at once).
    with stop_on_signals(stop):
        result = service.sync(
            settings,
            wait=wait,
            widgets=known_widgets(settings, widget),
            actor=actor_name(actor, settings),
            stop=stop.is_set,
        )
    c = result.counts
    if as_json:
        echo_json(pass_summary(result))
    else:
        typer.echo(
            f"sync {result.run_id}: fetched {c.fetched}, created {c.created}, "
            f"withheld {c.withheld}, ignored {c.ignored}, failed {c.failed}, "
            f"ambiguous {c.ambiguous}, recovered {c.recovered}; ledger: decisions "
            f"{c.decisions} (transfers {c.transfers})"
        )
    for recipient, count in result.derogations.items():
        typer.echo(warning_line(recipient, count), err=True)
    if result.at_risk:
        named = ", ".join(r["case_id"] for r in result.at_risk[:10])
        more = f" (+{len(result.at_risk) - 10} more)" if len(result.at_risk) > 10 else ""
        typer.echo(
            f"WARNING: {len(result.at_risk)} unsynced case(s) are older than "
            f"{settings.pipeline.deadline_days} days and at risk of SnapEngage's deletion: "
            f"{named}{more}",
            err=True,
        )
    if result.failed_total:
        typer.echo(f"{result.failed_total} case(s) failed; see `snapzen status`", err=True)
    if result.interrupted:
        typer.echo("snapzen: sync interrupted; the next sync does the rest", err=True)
    raise typer.Exit(result.exit_code)


@app.command()
@handle_errors
def run(
    config: ConfigOption = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="INTERVAL",
            help="Interval between passes, e.g. 15m (default: settings).",
        ),
    ] = None,
    fmt: Annotated[
        SummaryFormat | None,
        typer.Option(
            "--format",
            help="table (default: the logs only) or json (one line per pass, as `sync "
            "--format json` prints it, then one with the number of passes).",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
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
    from snapzen.commands.run_service import run_service  # lazy: start-up time
    from snapzen.support.settings import Needs

    as_json = summary_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    stopped = run_service(
        settings,
        every,
        report=(lambda result: echo_json_line(pass_summary(result))) if as_json else None,
    )
    typer.echo(f"snapzen run: stopped after {stopped.passes} pass(es)", err=True)
    if as_json:
        echo_json_line({"stopped_after_passes": stopped.passes, "exit_code": stopped.exit_code})
    raise typer.Exit(stopped.exit_code)


def _backfill_summary(result: Any, plan: Any) -> dict[str, Any]:
    report = result.dry_run
    return {
        "since": plan.since.isoformat(),
        "until": plan.until.isoformat(),
        "widgets": list(plan.widgets),
        "windows_total": result.windows_total,
        "windows_skipped": result.windows_skipped,
        "windows_done": result.windows_done,
        **result.counts.as_dict(),
        "interrupted": result.interrupted,
        "dry_run": None
        if report is None
        else {
            "would_create": report.would_create,
            "would_withhold": report.would_withhold,
            "would_ignore": report.would_ignore,
        },
        "exit_code": result.exit_code,
    }


def _listing(ids: Sequence[str], limit: int = 5) -> str:
    """A few ids and how many more: a summary line, not a dump (--format json lists all)."""
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


_TODAY = clock.now().date()  # the examples' dates: inside SnapEngage's 60-day window
_WEEK_AGO, _YESTERDAY = _TODAY - timedelta(days=7), _TODAY - timedelta(days=1)


@app.command(
    epilog="Examples:\n\n```\n"
    f"$ snapzen backfill --since {_WEEK_AGO} --until {_YESTERDAY} --dry-run\n"
    f"$ snapzen backfill --since {_WEEK_AGO} --until {_YESTERDAY} --wait\n"
    "```"
)
@handle_errors
def backfill(
    since: Annotated[
        datetime,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="First day (UTC), inclusive.",
        ),
    ],
    until: Annotated[
        datetime,
        typer.Option(
            "--until", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Last day (UTC), inclusive."
        ),
    ],
    config: ConfigOption = None,
    widget: WidgetOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            metavar="",
            help="Show what would be created and withheld; write nothing anywhere.",
        ),
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    progress_every: Annotated[
        float,
        typer.Option(
            "--progress-every",
            min=0.0,
            metavar="SECONDS",
            help="Seconds between JSON progress lines when stderr is not a terminal "
            "(0: one per change).",
        ),
    ] = 10.0,
    fmt: SummaryFormatOption = None,
    json_output: JsonFlag = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            metavar="FILE",
            help="On a terminal, where log lines go while the progress bar is shown "
            "(appended; default: snapzen-backfill.log beside the ledger).",
        ),
    ] = None,
    slice_seconds: Annotated[
        float,
        typer.Option(
            "--slice",
            min=0.0,
            metavar="SECONDS",
            help="Run consecutive days in one pass under the writer lock until this long has "
            "passed, then drain, record those days and release the lock for the cron sync. "
            "One `runs` row per slice; 0 = one pass per day.",
        ),
    ] = 60.0,
) -> None:
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
    from snapzen.cli.progress import JsonProgress, RichProgress  # lazy: start-up time (rich)
    from snapzen.cli.progress import log_file as progress_log_file
    from snapzen.commands.backfill import plan_backfill, run_backfill
    from snapzen.commands.scheduler import stop_on_signals
    from snapzen.support.settings import Needs, require_ledger_key, require_sync_settings

    as_json = summary_json(fmt, json_output)
    settings = settings_from(config, Needs.SYNC)
    plan = plan_backfill(settings, since.date(), until.date(), known_widgets(settings, widget))
    require_sync_settings(settings)
    require_ledger_key(settings)
    on_terminal = sys.stderr.isatty() and not quiet()
    progress: BackfillProgress = (
        RichProgress() if on_terminal else JsonProgress(every=progress_every)
    )
    logs_path = log_file or settings.ledger.path.parent / "snapzen-backfill.log"
    logs: AbstractContextManager[CountingFile | None] = (
        progress_log_file(logs_path) if on_terminal else nullcontext()
    )
    stop = threading.Event()
    with stop_on_signals(stop), logs as written:
        if written is not None:
            typer.echo(f"logs: {logs_path} (while the progress bar is shown)", err=True)
        result = run_backfill(
            settings,
            plan,
            actor=actor_name(actor, settings),
            wait=wait,
            dry_run=dry_run,
            stop=stop,
            progress=progress,
            slice_seconds=slice_seconds,
        )
    if written is not None and written.problems:
        typer.echo(f"{written.problems} warning(s)/error(s) logged in {logs_path}", err=True)
    c = result.counts
    label = "dry run" if dry_run else "backfill"
    if result.interrupted:
        label += " (interrupted)"
    if as_json:
        echo_json(_backfill_summary(result, plan))
        raise typer.Exit(result.exit_code)
    windows = (
        f"{label} {plan.since}..{plan.until} ({', '.join(plan.widgets)}): "
        f"{result.windows_total} window(s), {result.windows_skipped} already finished, "
        f"{result.windows_done} done; fetched {c.fetched}"
    )
    if result.dry_run is None:
        typer.echo(
            f"{windows}, created {c.created}, withheld {c.withheld}, ignored {c.ignored}, "
            f"failed {c.failed}; ledger: decisions {c.decisions} (transfers {c.transfers})"
        )
    else:
        # Nothing happened: the conditional, and a few ids per line (--format json: all).
        report = result.dry_run
        typer.echo(
            f"{windows}; would create {len(report.would_create)} ticket(s), would withhold "
            f"{len(report.would_withhold)}, would ignore {len(report.would_ignore)}"
        )
        if report.would_create:
            typer.echo(f"  would create: {_listing(report.would_create)}")
        for reason in sorted(set(report.would_withhold.values())):
            ids = sorted(k for k, v in report.would_withhold.items() if v == reason)
            typer.echo(f"  would withhold ({reason or 'no reason'}, {len(ids)}): {_listing(ids)}")
        if report.would_ignore:
            typer.echo(f"  would ignore: {_listing(sorted(report.would_ignore))}")
        typer.echo(
            "dry run: nothing was written to Zendesk or to the ledger "
            "(--format json lists every case id)"
        )
    if result.interrupted:
        typer.echo("snapzen: backfill interrupted; run the same command again to resume", err=True)
    elif result.last is not None and result.last.at_risk:
        typer.echo(
            f"WARNING: {len(result.last.at_risk)} unsynced case(s) are at risk of SnapEngage's "
            f"deletion: {_listing([r['case_id'] for r in result.last.at_risk], 10)}",
            err=True,
        )
    raise typer.Exit(result.exit_code)


@app.command()
@handle_errors
def retry(
    config: ConfigOption = None,
    case: Annotated[
        list[str] | None,
        typer.Option("--case", metavar="ID", help="A failed case id (repeatable)."),
    ] = None,
    all_failed: Annotated[
        bool,
        typer.Option("--all-failed", metavar="", help="Every failed case with a payload."),
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryFormatOption = None,
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
    as_json = summary_json(fmt, json_output)
    settings = settings_from(config)
    outcome = retry_cases(
        settings,
        None if all_failed else list(case or []),
        actor=actor_name(actor, settings),
        wait=wait,
    )
    result = outcome.result
    if as_json:
        echo_json(
            {
                "run_id": result.run_id if result is not None else None,
                "requeued": list(outcome.requeued),
                **(result.counts.as_dict() if result is not None else {}),
                "exit_code": outcome.exit_code,
            }
        )
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


@app.command()
@handle_errors
def dismiss(
    case: Annotated[
        list[str], typer.Option("--case", metavar="ID", help="A failed case id (repeatable).")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason", metavar="TEXT", help="Why it will never be sent (kept in the ledger)."
        ),
    ],
    config: ConfigOption = None,
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryFormatOption = None,
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
    from snapzen.commands.dismiss import dismiss as dismiss_cases  # lazy: start-up time

    as_json = summary_json(fmt, json_output)
    settings = settings_from(config)
    who = actor_name(actor, settings)
    run_id = dismiss_cases(settings, case, reason=reason, actor=who, wait=wait)
    if as_json:
        echo_json({"run_id": run_id, "dismissed": list(case), "actor": who})
    else:
        typer.echo(f"dismiss {run_id}: {len(case)} case(s) marked ignored")
