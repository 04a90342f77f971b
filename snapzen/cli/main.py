"""The `snapzen` command line: the top-level app, its global options, its own commands (sync,
run, backfill, retry, dismiss, status, init) and its groups, in the order `snapzen --help`
lists them.

Each command parses its arguments, calls one function in snapzen.commands and renders what it
returns; its examples are in its own docstring. The commands (pydantic, sqlite_utils,
structlog, requests) are imported inside the functions that run them: every `snapzen`
invocation imports this module to register its commands, and those imports would add ~0.1 s
to its start-up (tests/unit/cli/test_startup_imports.py).
"""

from __future__ import annotations

import sys
import threading
from contextlib import nullcontext
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from snapzen import __version__, commands  # each module imported when first named (start-up time)
from snapzen.cli import ledger, retention, sandbox
from snapzen.cli.common import (
    GLOBAL,
    ActorOption,
    ConfigOption,
    Format,
    FormatOption,
    JournalOption,
    NoJournalOption,
    SummaryOption,
    ViaChoice,
    ViaOption,
    WaitOption,
    Widgets,
    actor_name,
    catch_up,
    closing_quietly,
    command,
    echo_json,
    opt,
    reset_globals,
    settings_from,
    show,
)
from snapzen.commands import summaries  # light: the standard library
from snapzen.support import clock, errors

app = typer.Typer(
    name="snapzen",
    help="Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.",
    epilog="Shell completion: snapzen --install-completion (bash, zsh, fish, PowerShell).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
DAY = ["%Y-%m-%d"]


def _version(value: bool) -> None:
    if value:  # the one place the version lives (pyproject reads it too)
        typer.echo(f"snapzen {__version__}")
        raise typer.Exit()


def counted(name: str, short: str, help: str) -> Any:
    return typer.Option(name, short, count=True, metavar="", show_default=False, help=help)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    verbose: Annotated[int, counted("--verbose", "-v", "Debug logs.")] = 0,
    quiet: Annotated[
        int, counted("--quiet", "-q", "Warnings and errors only; no progress output.")
    ] = 0,
    version: Annotated[
        bool, opt("", "Print the version and exit.", "--version", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Sync finished SnapEngage chats into Zendesk with a GDPR transfer ledger.

    Options given here apply to every command; a command's own --config wins.
    """
    if verbose and quiet:
        raise typer.BadParameter("give -v or -q, not both", param_hint="-v/-q")
    GLOBAL.config, GLOBAL.verbosity = config, verbose - quiet
    ctx.call_on_close(reset_globals)


def main() -> None:
    with closing_quietly():  # `snapzen ledger list | head` ends quietly
        app()


@command(app)
def sync(
    wait: WaitOption = False,
    widget: Widgets = None,
    fmt: SummaryOption = None,
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
    settings = settings_from("sync")
    stop = threading.Event()
    # SIGTERM or Ctrl-C: the batch in hand finishes, the run is recorded 'interrupted' and the
    # process exits 1 (a second signal kills it at once).
    with commands.run.stop_on_signals(stop):
        result = commands.service.sync(
            settings,
            wait=wait,
            widgets=widget,
            actor=actor_name(actor, settings),
            stop=stop.is_set,
        )
    lines = summaries.said("sync", r=result, deadline_days=settings.pipeline.deadline_days)
    show(lines, summaries.pass_json(result), result.exit_code)


@command(app)
def run(
    every: Annotated[
        str | None, opt("INTERVAL", "Interval between passes, e.g. 15m (default: settings).")
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Run as a service: one sync pass now, then one every interval, until SIGTERM/SIGINT.

    Each pass takes the writer lock for its own duration, so `backfill`, `retry` and manual
    `sync` get turns between passes. On SIGTERM or Ctrl-C the pass in hand finishes its batch
    and the process exits 0 within seconds. It prints only logs; with --format json, also one
    JSON line per pass (as `sync --format json` prints it), then one with the number of passes.

    Examples:

    ```
    $ snapzen run
    $ snapzen run --every 5m --format json
    ```
    """
    as_json = fmt is Format.json
    passes, code = commands.service.run_service(
        settings_from("sync"),
        every,
        report=(lambda done: echo_json(summaries.pass_json(done), line=True)) if as_json else None,
    )
    typer.echo(f"snapzen run: stopped after {passes} pass(es)", err=True)
    if as_json:
        echo_json({"stopped_after_passes": passes, "exit_code": code}, line=True)
    raise typer.Exit(code)


@command(app)
def backfill(
    since: Annotated[datetime, opt("YYYY-MM-DD", "First day (UTC), inclusive.", formats=DAY)],
    until: Annotated[datetime, opt("YYYY-MM-DD", "Last day (UTC), inclusive.", formats=DAY)],
    widget: Widgets = None,
    dry_run: Annotated[
        bool,
        opt("", "Show what would be created and withheld; write nothing anywhere.", "--dry-run"),
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    progress_every: Annotated[
        float,
        opt(
            "SECONDS",
            "Seconds between JSON progress lines when stderr is not a terminal "
            "(0: one per change).",
            min=0.0,
        ),
    ] = 10.0,
    fmt: SummaryOption = None,
    log_file: Annotated[
        Path | None,
        opt(
            "FILE",
            "On a terminal, where log lines go while the progress bar is shown "
            "(appended; default: snapzen-backfill.log beside the ledger).",
        ),
    ] = None,
    slice_seconds: Annotated[
        float,
        opt(
            "SECONDS",
            "Run consecutive days in one pass under the writer lock until this long "
            "has passed, then drain, record those days and release the lock for the cron sync. "
            "One `runs` row per slice; 0 = one pass per day.",
            "--slice",
            min=0.0,
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

    Examples:

    ```
    $ since=$(date -u -d '7 days ago' +%F) until=$(date -u -d yesterday +%F)  # last 7 days
    $ snapzen backfill --since "$since" --until "$until" --dry-run
    $ snapzen backfill --since "$since" --until "$until" --wait
    ```
    """
    from snapzen.cli.render import RichProgress  # lazy: start-up time (rich)

    settings = settings_from("sync")  # and what a pass needs (the ledger key too)
    plan = commands.backfill.plan_backfill(settings, since.date(), until.date(), widget)
    on_terminal = sys.stderr.isatty() and GLOBAL.verbosity >= 0
    progress = commands.backfill_progress
    bar = RichProgress() if on_terminal else progress.JsonProgress(every=progress_every)
    logs_path = log_file or settings.ledger.path.parent / "snapzen-backfill.log"
    stop = threading.Event()
    logs = progress.log_file(logs_path) if on_terminal else nullcontext()
    with commands.run.stop_on_signals(stop), logs as written:
        if written is not None:
            typer.echo(f"logs: {logs_path} (while the progress bar is shown)", err=True)
        result = commands.backfill.run_backfill(
            settings,
            plan,
            actor=actor_name(actor, settings),
            wait=wait,
            dry_run=dry_run,
            stop=stop,
            progress=bar,
            slice_seconds=slice_seconds,
        )
    if written is not None and written.problems:
        typer.echo(f"{written.problems} warning(s)/error(s) logged in {logs_path}", err=True)
    lines = summaries.said("backfill", r=result, dry_run=dry_run)
    show(lines, summaries.backfill_json(result), result.exit_code)


@command(app)
def retry(
    case: Annotated[list[str] | None, opt("ID", "A failed case id (repeatable).")] = None,
    all_failed: Annotated[
        bool, opt("", "Every failed case with a payload.", "--all-failed")
    ] = False,
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryOption = None,
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
    if bool(case) == all_failed:
        raise errors.ConfigError("give either --case ID (repeatable) or --all-failed")
    settings = settings_from()
    cases = None if all_failed else list(case or [])
    done = commands.retry.retry(settings, cases, actor=actor_name(actor, settings), wait=wait)
    show(summaries.said("retry", o=done), summaries.retry_json(done), done.exit_code)


@command(app)
def dismiss(
    case: Annotated[list[str], opt("ID", "A failed case id (repeatable).", "--case")],
    reason: Annotated[str, opt("TEXT", "Why it will never be sent (kept in the ledger).")],
    actor: ActorOption = None,
    wait: WaitOption = False,
    fmt: SummaryOption = None,
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
    settings = settings_from()
    who = actor_name(actor, settings)
    run_id = commands.retry.dismiss(settings, case, reason=reason, actor=who, wait=wait)
    lines = summaries.said("dismissed", run_id=run_id, cases=case)
    show(lines, {"run_id": run_id, "dismissed": list(case), "actor": who})


class StatusFormat(StrEnum):
    table = "table"
    json = "json"
    prometheus = "prometheus"


@command(app)
def status(
    fmt: Annotated[
        StatusFormat | None,
        typer.Option("--format", help="table, json, or prometheus text (default: table)."),
    ] = None,
    check: Annotated[
        bool,
        opt(
            "",
            "Health check: one line; exit 0 healthy, 1 unhealthy (no run completed within "
            "3 intervals, last run aborted, cases at risk, database unreadable).",
            "--check",
        ),
    ] = False,
) -> None:
    """Per widget: cursor, case counts, oldest unsynced age; failures; last run. No network.

    Exits 3 when cases are at risk of SnapEngage's deletion or have failed.

    Examples:

    ```
    $ snapzen status
    $ snapzen status --check
    $ snapzen status --format prometheus
    ```
    """
    shown = fmt or StatusFormat.table
    settings = settings_from()
    status = commands.status
    if check:
        health = status.check_health(settings.ledger.path, settings, clock.now())
        typer.echo(health.message if health.ok else f"unhealthy: {health.message}")
        raise typer.Exit(0 if health.ok else 1)
    report = status.read_status(settings, clock.now())
    if shown is StatusFormat.json:
        echo_json(report)
    elif shown is StatusFormat.prometheus:
        sys.stdout.write(status.render_prometheus(report))
    else:
        from snapzen.cli.render import print_status  # lazy: start-up time (rich)

        print_status(report)
        if report["at_risk"]:
            named = ", ".join(case["case_id"] for case in report["at_risk"][:10])
            typer.echo(f"at risk: {named}", err=True)
    raise typer.Exit(status.status_exit_code(report))


@command(app)
def init(
    adopt: Annotated[
        bool,
        opt(
            "",
            "First record every snapengage: ticket Zendesk already holds (SnapEngage's "
            "retention window and more) as synced, so no sync creates them again.",
            "--adopt",
        ),
    ] = False,
    via: ViaOption = ViaChoice.incremental,
    erasure_journal: JournalOption = None,
    no_erasure_journal: NoJournalOption = False,
    actor: ActorOption = None,
) -> None:
    """Create the ledger at ledger.path, bound to ledger.key. Refuses if one exists.

    No other command creates a ledger. Use --adopt when this Zendesk already has tickets
    from snapzen (a lost or new ledger file).

    Examples:

    ```
    $ snapzen init
    $ snapzen init --adopt
    ```
    """
    settings = settings_from()
    how = catch_up(settings, actor, via, erasure_journal, no_erasure_journal)
    result = commands.init.init_ledger(settings, how, adopt=adopt)
    typer.echo(f"created ledger {result.path} (id {result.ledger_id})")
    show(summaries.said("caught_up", found=result.adoption, done=result.erasures))


app.add_typer(sandbox.app, name="sandbox")
app.add_typer(ledger.app, name="ledger")
app.add_typer(retention.app, name="retention")
