"""What every command shares: the one way to register a command (``@command``), settings
loading, error → exit code mapping, the options every command declares alike (--config,
--format with its --json alias, --wait, --actor, --overwrite, the ledger filters and the
data subject's email), and what the command line promises about its standard output:

- a reader that closes the pipe early (``snapzen ledger list | head``) ends the command
  quietly, as coreutils do: no traceback, no error line, exit status 141 (128 + SIGPIPE,
  what a shell reports for ``seq 1000000 | head``);
- a command asked for JSON (``--format json`` / ``--json``) prints one JSON document on
  stdout in every outcome, also when it did not run (another run holds the lock) or failed:
  ``{"outcome": "skipped" | "error" | "interrupted", "message": ..., "exit_code": N}``.

Python ignores SIGPIPE (so a sync writing to a closed socket gets an exception, not death);
the closed stdout is recognised instead, by polling its descriptor for POLLERR.

Emails are handed to snapzen.commands at once, which turns them into their HMAC reference;
they are never printed, logged or stored.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import json
import os
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar, get_args

import typer

from snapzen import commands
from snapzen.commands import summaries  # light: jinja2 is imported on use
from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.support.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE (13): what the shell shows for coreutils in this case


@dataclass
class GlobalOptions:
    """What `snapzen [-c FILE] [-q|-v] COMMAND` was given before the command, and whether
    the command resolved its format to JSON (outcomes without output then print JSON too)."""

    config: Path | None = None
    verbosity: int = 0  # -v: +1 (debug logs); -q: -1 (warnings and errors only, no progress)
    json: bool = False


GLOBAL = GlobalOptions()


def reset_globals() -> None:
    """Called when the top-level command ends: the next invocation in the same process
    (tests, embedding) starts from the defaults."""
    GLOBAL.config, GLOBAL.verbosity, GLOBAL.json = None, 0, False


def log_level(configured: str) -> str:
    if GLOBAL.verbosity > 0:
        return "debug"
    if GLOBAL.verbosity < 0 and configured in ("debug", "info"):
        return "warning"
    return configured


def settings_from(needs: str = "all") -> Settings:
    """Load settings, set up logging, and register every secret with the log scrubber: from
    the --config given with the command, which wins over the one given before it (both kept
    in GLOBAL), which wins over $SNAPZEN_CONFIG. ``needs``: what the command needs, a
    snapzen.support.settings.Needs ("all": every section valid; "sync": and what a pass
    needs; "evidence": the read-only evidence commands, for which only the ledger settings
    must hold: an auditor may have the file, a public key and the ledger key, and no sync
    settings)."""
    # Imported here, not at module level: pydantic-settings and structlog (which pulls in
    # rich) cost ~0.2 s of start-up that `--help` and argument errors should not pay.
    from snapzen.support.settings import Needs

    return commands.configure.load(GLOBAL.config, Needs(needs), log_level)


def fail(message: str, code: int, outcome: str = "error") -> NoReturn:
    """One clean line on stderr (and, for a command asked for JSON, a JSON document on stdout
    saying the same), then exit with ``code``."""
    typer.echo(f"snapzen: {'error: ' if outcome == 'error' else ''}{message}", err=True)
    outcome_json(outcome, message, code)
    raise typer.Exit(code)


def handle_errors(func: Callable[P, R], refused: str | None = None) -> Callable[P, R]:
    """Map the error hierarchy to the exit codes in docs/cli.md; no tracebacks for users.
    ``refused``: for a command whose request stays outstanding when another run holds the
    writer lock, what to tell (e.g. "erasure NOT done"; exit 1 instead of "skipped", 0)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        GLOBAL.json = False
        try:
            return func(*args, **kwargs)
        except errors.ConfigError as exc:
            if getattr(exc, "candidates", None) is not None:  # a reference several people used
                refuse_shared(exc)
            fail(str(exc), errors.EXIT_USAGE)
        except errors.LockHeld as exc:
            if refused is not None:
                fail(
                    f"{refused}: another snapzen run holds the writer lock; rerun with "
                    "--wait to queue behind it",
                    errors.EXIT_ABORTED,
                )
            fail(str(exc), errors.EXIT_OK, "skipped")
        except errors.SnapzenError as exc:
            fail(f"{type(exc).__name__}: {exc}", errors.EXIT_ABORTED)
        except errors.ENVIRONMENT_ERRORS as exc:
            if isinstance(exc, BrokenPipeError) and stdout_closed():
                # The reader of stdout went away (`| head`): end quietly, as coreutils do.
                silence_stdout()
                raise typer.Exit(EXIT_CLOSED_PIPE) from None
            # Disk full, database locked for too long, a file vanished mid-run: one line, no
            # traceback; the run row (if any) already says 'aborted'.
            from snapzen.support.log import scrub_personal  # lazy: start-up time

            fail(f"{type(exc).__name__}: {scrub_personal(str(exc))}", errors.EXIT_ABORTED)
        except KeyboardInterrupt:
            fail("interrupted", errors.EXIT_ABORTED, "interrupted")

    return wrapper


def command(
    app: typer.Typer,
    name: str | None = None,
    *,
    refused: str | None = None,
    group: bool = False,
    config: bool = True,
    data_format: bool = False,
    **kw: Any,
) -> Callable[[Callable[P, R]], Callable[..., R]]:
    """The one way a command is registered: ``app.command`` (``group``: the group's own
    command, ``app.callback``) over ``handle_errors``, with the options ``shaped`` adds.
    ``data_format``: the command's ``--format`` is the format of the data it writes (`ledger
    export`), not of its outcome, so JSON never adds an outcome document to that data."""

    def register(func: Callable[P, R]) -> Callable[..., R]:
        wrapped = handle_errors(shaped(func, config=config, outcome=not data_format), refused)
        (app.callback(**kw) if group else app.command(name, **kw))(wrapped)
        return wrapped

    return register


def shaped(func: Callable[..., R], *, config: bool, outcome: bool) -> Callable[..., R]:
    """``func`` with the options declared here once for every command (typer reads the
    signature, which gets them): the command's own ``--config`` last (``config``: it reads
    settings), which wins over the one given before the command (settings_from reads GLOBAL);
    and for a command whose ``--format`` option is its parameter ``fmt``, ``--json`` after it,
    the alias of ``--format json``. Both, disagreeing, are refused (exit 2); the command is
    handed ``fmt`` resolved (None: neither given), and a command asked for JSON prints a JSON
    outcome whatever happens (GLOBAL.json; ``outcome``: its --format is not a data format)."""
    params = list(inspect.signature(func, eval_str=True).parameters.values())
    fmt = next((i for i, p in enumerate(params) if p.name == "fmt"), None)
    as_json: Any = None
    if fmt is not None:
        choices = get_args(get_args(params[fmt].annotation)[0])  # Annotated[X | None, --format]
        as_json = next(kind for kind in choices if kind is not type(None))("json")
        params.insert(fmt + 1, _param("json_flag", JsonFlag, False))
    if config:
        params.append(_param("config", ConfigOption, None))

    @functools.wraps(func)
    def run(*args: Any, config: Path | None = None, json_flag: bool = False, **kw: Any) -> R:
        if as_json is not None:
            if json_flag and kw["fmt"] not in (None, as_json):
                raise errors.ConfigError(f"--json and --format {kw['fmt']} disagree: give one")
            kw["fmt"] = as_json if json_flag else kw["fmt"]
            GLOBAL.json = outcome and kw["fmt"] == as_json
        before = GLOBAL.config
        GLOBAL.config = config or before
        try:
            return func(*args, **kw)
        finally:  # the next command run in this process starts from what it was given
            GLOBAL.config = before

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return run


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Parameter(name, kind, default=default, annotation=annotation)


def refuse_shared(exc: Any) -> NoReturn:
    """Exit 2 with the candidate chats of a shared reference (SubjectCollision): ids and
    dates, never names."""
    say(summaries.said("shared", exc=exc))
    raise typer.Exit(errors.EXIT_USAGE)


def say(lines: Iterable[tuple[bool, str]]) -> None:
    """Print what a result says (snapzen.commands.summaries): each line to stderr or stdout."""
    for to_stderr, text in lines:
        typer.echo(text, err=to_stderr)


def show(lines: Iterable[tuple[bool, str]], doc: Any = None, code: int = 0) -> NoReturn:
    """End a command with what its result says: asked for JSON, the document ``doc`` on stdout
    and only the lines meant for stderr (warnings, what is still to do); otherwise every
    line. Then exit with ``code``."""
    if GLOBAL.json:
        echo_json(doc)
    say(line for line in lines if line[0] or not GLOBAL.json)
    raise typer.Exit(code)


def echo_json(payload: Any, *, line: bool = False) -> None:
    """One JSON document; ``line``: one compact object per line, flushed (output that streams,
    as `run` prints)."""
    sys.stdout.write(json.dumps(payload, indent=None if line else 2, sort_keys=True, default=str))
    sys.stdout.write("\n")
    if line:
        sys.stdout.flush()


def outcome_json(outcome: str, message: str, exit_code: int) -> None:
    """In JSON mode, the document a command prints when it has no result of its own."""
    if GLOBAL.json:
        echo_json({"outcome": outcome, "message": message, "exit_code": exit_code})


def stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reading end is gone."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # not a real file (a test runner's buffer)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


@contextmanager
def closing_quietly() -> Iterator[None]:
    """Around the whole command line: a reader that went away ends it with status 141 and
    nothing on stderr (also when the last buffered lines are flushed at the end)."""
    try:
        try:
            yield
        finally:
            sys.stdout.flush()  # here, where BrokenPipeError can still be caught
    except BrokenPipeError:
        if not stdout_closed():
            raise
        silence_stdout()
        raise SystemExit(EXIT_CLOSED_PIPE) from None


# --- the options every command declares alike ----------------------------------------------


def opt(metavar: str, help: str, *names: str, **kw: Any) -> Any:
    """An option with a readable placeholder (``""``: a flag, no placeholder shown)."""
    return typer.Option(*names, metavar=metavar, help=help, **kw)


ConfigOption = Annotated[
    Path | None,
    # Not read from SNAPZEN_CONFIG here (no envvar=): load_settings falls back to it only when
    # no --config was given, before or after the command, so a named file always wins.
    opt(
        "FILE",
        "TOML config file; wins over $SNAPZEN_CONFIG (environment variables override its values).",
        "--config",
        "-c",
    ),
]
WaitOption = Annotated[
    bool,
    opt("", "Wait for another running snapzen to finish instead of exiting at once.", "--wait"),
]
LockWait = Annotated[
    float | None,
    # Hidden: before --wait; kept so scripts keep working.
    opt(
        "",
        "Seconds to wait for a running sync to release the writer lock.",
        "--lock-wait",
        hidden=True,
    ),
]
ActorOption = Annotated[
    str | None,
    opt("NAME", "Who runs this, recorded in the runs table and ledger (default: $USER)."),
]
JsonFlag = Annotated[bool, opt("", "Same as --format json.", "--json")]
OverwriteOption = Annotated[
    bool, opt("", "Replace FILE if it exists (refused otherwise).", "--overwrite")
]
Widgets = Annotated[list[str] | None, opt("ID", "Only this widget (repeatable).", "--widget", "-w")]


class Format(StrEnum):
    """What most commands print: text for people (default) or one JSON document."""

    table = "table"
    json = "json"


FormatOption = Annotated[Format | None, typer.Option("--format", help="table (default) or json.")]
SummaryOption = Annotated[
    Format | None,
    typer.Option("--format", help="table (one line; default) or json (the counts, for scripts)."),
]
# The data subject: by email ('-': from stdin), narrowed by chats or tickets.
Email = Annotated[
    str,
    opt(
        "EMAIL",
        "The data subject's email ('-' reads it from stdin, keeping it out of shell "
        "history). Only its HMAC reference is used.",
    ),
]
OptionalEmail = Annotated[
    str | None,
    opt(
        "EMAIL",
        "The person's email ('-' reads it from stdin); only its HMAC reference is kept.",
        "--email",
    ),
]
CaseIds = Annotated[
    list[str] | None, opt("ID", "Only this chat (case id) of the subject; repeatable.", "--case")
]
TicketIds = Annotated[
    list[int] | None, opt("ID", "Only this Zendesk ticket of the subject; repeatable.", "--ticket")
]
Received = Annotated[
    str | None,
    opt(
        "YYYY-MM-DD",
        "Day the request was received (YYYY-MM-DD; default today, UTC): the "
        "Art. 12(3) deadline is one month later.",
        "--received",
    ),
]
RequestOption = Annotated[
    str | None,
    opt(
        "ID",
        "Answer this open request (`ledger requests open`) instead of recording a new "
        "one; its received date and clock apply.",
        "--request",
    ),
]


class ViaChoice(StrEnum):  # how commands.reconcile.find_tickets reads Zendesk
    incremental = "incremental"
    search = "search"


# What `init` and `ledger restore` take: how to read Zendesk, and the erasure journal.
ViaOption = Annotated[
    ViaChoice,
    typer.Option(
        "--via",
        help="How to list Zendesk's snapengage tickets: the incremental "
        "ticket export (every ticket, no indexing delay, 10 requests/min) or search "
        "export (100/min; tickets from the last minutes may be missing).",
    ),
]
JournalOption = Annotated[
    Path | None,
    opt(
        "FILE",
        "The erasure journal to re-apply (e.g. the newest checkpoint's copy, "
        "CHECKPOINT.erasures.jsonl); default ledger.erasure_journal, which must exist.",
        "--erasure-journal",
    ),
]
NoJournalOption = Annotated[
    bool,
    opt(
        "",
        "There is no journal: state (recorded in the ledger's chain) that nobody was "
        "erased and no data-subject request was made outside this ledger.",
        "--no-erasure-journal",
    ),
]


def catch_up(
    settings: Settings, actor: str | None, via: ViaChoice, journal: Path | None, no_journal: bool
) -> commands.reconcile.CatchUp:
    """What `init --adopt` and `ledger restore` give their catch-up with Zendesk
    (snapzen.commands.reconcile.CatchUp), from the options they share."""
    reconcile = commands.reconcile
    progress = functools.partial(typer.echo, err=True)  # what it tells while it works
    return reconcile.CatchUp(actor_name(actor, settings), via, journal, no_journal, progress)


S = TypeVar("S", str, str | None)


def read_email(email: S) -> S:
    """The --email value, read from stdin for '-' (read once: stdin cannot be re-read)."""
    return sys.stdin.readline() if email == "-" else email


def lock_seconds(wait: bool, lock_wait: float | None = None) -> float:
    """--wait: as long as it takes; without it, at once (the --lock-wait seconds if given)."""
    return lock_wait if lock_wait is not None else (-1 if wait else 0)


def actor_name(given: str | None, settings: Settings) -> str:
    """--actor, else the login name, else pipeline.actor: the same default on every command."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (arbitrary container uid)
        return settings.pipeline.actor


def new_file(path: Path, overwrite: bool) -> None:
    """Evidence files (exports, checkpoints, backups) are never replaced silently."""
    if str(path) != "-" and path.exists() and not overwrite:
        raise errors.ConfigError(f"{path} exists; pass --overwrite to replace it")
