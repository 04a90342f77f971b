"""What every command shares: the --config option, settings loading, error → exit code mapping,
and the conventions every command follows (--format with its --json alias, --wait, --actor,
--overwrite, -q/-v from the top-level options)."""

from __future__ import annotations

import functools
import getpass
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from snapzen.cli import streams
from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.support.settings import Needs, Settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class GlobalOptions:
    """What `snapzen [-c FILE] [-q|-v] COMMAND` was given before the command."""

    config: Path | None = None
    verbosity: int = 0  # -v: +1 (debug logs); -q: -1 (warnings and errors only, no progress)


GLOBAL = GlobalOptions()


def reset_globals() -> None:
    """Called when the top-level command ends: the next invocation in the same process
    (tests, embedding) starts from the defaults."""
    GLOBAL.config, GLOBAL.verbosity = None, 0


def quiet() -> bool:
    return GLOBAL.verbosity < 0


def log_level(configured: str) -> str:
    if GLOBAL.verbosity > 0:
        return "debug"
    if GLOBAL.verbosity < 0 and configured in ("debug", "info"):
        return "warning"
    return configured


def settings_from(config: Path | None, needs: Needs | None = None) -> Settings:
    """Load settings, set up logging, and register every secret with the log scrubber.
    ``config``: the command's own --config, which wins over the one given before the
    command, which wins over $SNAPZEN_CONFIG. ``needs``: what the command needs (default:
    every section valid; see snapzen.support.settings.Needs)."""
    # Imported here, not at module level: pydantic-settings and structlog (which pulls in
    # rich) cost ~0.2 s of start-up that `--help` and argument errors should not pay.
    from snapzen.commands import configure
    from snapzen.support.settings import Needs

    return configure.load(config or GLOBAL.config, needs or Needs.ALL, log_level)


def evidence_settings(config: Path | None) -> Settings:
    """For the read-only evidence commands (list, export, report, subject, serve, verify,
    checkpoint): only the ledger settings must hold (an auditor may have the file, a public key
    and the ledger key, and no sync settings); other sections are used where they load."""
    from snapzen.support.settings import Needs  # lazy: start-up time (see settings_from)

    return settings_from(config, Needs.EVIDENCE)


def known_widgets(settings: Settings, given: list[str] | None) -> list[str] | None:
    """``--widget`` values, each one of ``snapengage.widgets``; ConfigError (exit 2) naming
    the first that is not: a typo must not fetch, or write state for, an unknown widget."""
    if not given:
        return None
    configured = set(settings.snapengage.widgets)
    for widget in given:
        if widget not in configured:
            raise errors.ConfigError(
                f"--widget {widget!r} is not one of snapengage.widgets "
                f"({', '.join(sorted(configured)) or 'none configured'})"
            )
    return list(given)


def fail(message: str, code: int, outcome: str = "error") -> NoReturn:
    """One clean line on stderr (and, for a command asked for JSON, a JSON document on stdout
    saying the same), then exit with ``code``."""
    typer.echo(f"snapzen: error: {message}", err=True)
    streams.outcome_json(outcome, message, code)
    raise typer.Exit(code)


def handle_errors(func: Callable[P, R], refused: str | None = None) -> Callable[P, R]:
    """Map the error hierarchy to the exit codes in docs/cli.md; no tracebacks for users.
    ``refused``: for a command whose request stays outstanding when another run holds the
    writer lock, what to tell (e.g. "erasure NOT done"; exit 1 instead of "skipped", 0)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        streams.reset()
        try:
            return func(*args, **kwargs)
        except errors.ConfigError as exc:
            if getattr(exc, "candidates", None) is not None:  # a reference several people used
                refuse_shared(exc)
            fail(str(exc), errors.EXIT_USAGE)
        except errors.LockHeld as exc:
            if refused is not None:
                locked_out(refused)
            typer.echo(f"snapzen: {exc}", err=True)
            streams.outcome_json("skipped", str(exc), errors.EXIT_OK)
            raise typer.Exit(errors.EXIT_OK) from None
        except errors.SnapzenError as exc:
            fail(f"{type(exc).__name__}: {exc}", errors.EXIT_ABORTED)
        except errors.ENVIRONMENT_ERRORS as exc:
            if isinstance(exc, BrokenPipeError) and streams.stdout_closed():
                # The reader of stdout went away (`| head`): end quietly, as coreutils do.
                streams.silence_stdout()
                raise typer.Exit(streams.EXIT_CLOSED_PIPE) from None
            # Disk full, database locked for too long, a file vanished mid-run: one line, no
            # traceback; the run row (if any) already says 'aborted'.
            from snapzen.support.log import scrub_personal  # lazy: start-up time

            fail(f"{type(exc).__name__}: {scrub_personal(str(exc))}", errors.EXIT_ABORTED)
        except KeyboardInterrupt:
            typer.echo("snapzen: interrupted", err=True)
            streams.outcome_json("interrupted", "interrupted", errors.EXIT_ABORTED)
            raise typer.Exit(errors.EXIT_ABORTED) from None
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def command(
    app: typer.Typer, name: str | None = None, *, refused: str | None = None, **kw: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The one way a command is registered: ``app.command`` over ``handle_errors``."""

    def register(func: Callable[P, R]) -> Callable[P, R]:
        wrapped = handle_errors(func, refused)
        app.command(name, **kw)(wrapped)
        return wrapped

    return register


def locked_out(told: str) -> NoReturn:
    """A request is still outstanding when the lock is held: exit 1, not "nothing to do"."""
    fail(
        f"{told}: another snapzen run holds the writer lock; rerun with --wait to queue behind it",
        errors.EXIT_ABORTED,
    )


def not_done(what: str) -> NoReturn:
    locked_out(f"{what} NOT done")


def refuse_shared(exc: Any) -> NoReturn:
    """Exit 2 with the candidate chats of a shared reference (SubjectCollision): ids and
    dates, never names."""
    typer.echo(f"snapzen: {exc}; candidate chats:", err=True)
    for item in exc.candidates:
        typer.echo(
            f"  --case {item.case_id}  ticket {item.ticket_id or '-'}  "
            f"started {item.started_at or '-'}  widget {item.widget_id or ''}",
            err=True,
        )
    raise typer.Exit(errors.EXIT_USAGE)


def say(lines: Iterable[tuple[bool, str]]) -> None:
    """Print what a result says (snapzen.commands.summaries): each line to stderr or stdout."""
    for to_stderr, text in lines:
        typer.echo(text, err=to_stderr)


def echo_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def echo_json_line(payload: Any) -> None:
    """One compact JSON object per line, flushed: for output that streams (`run`)."""
    sys.stdout.write(json.dumps(payload, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


# --- conventions shared by every command ------------------------------------------------------


def opt(metavar: str, help: str, *names: str, **kw: Any) -> Any:
    """An option with a readable placeholder (``""``: a flag, no placeholder shown)."""
    return typer.Option(*names, metavar=metavar, help=help, **kw)


ConfigOption = Annotated[
    Path | None,
    # Not read from SNAPZEN_CONFIG here (no envvar=): load_settings falls back to it only when
    # no --config was given, before or after the command, so a named file always wins.
    opt("FILE", "TOML config file; wins over $SNAPZEN_CONFIG (environment variables override "
        "its values).", "--config", "-c"),
]  # fmt: skip
WaitOption = Annotated[
    bool,
    opt("", "Wait for another running snapzen to finish instead of exiting at once.", "--wait"),
]
ActorOption = Annotated[
    str | None,
    opt("NAME", "Who runs this, recorded in the runs table and ledger (default: $USER)."),
]
JsonFlag = Annotated[bool, opt("", "Same as --format json.", "--json")]
OverwriteOption = Annotated[
    bool, opt("", "Replace FILE if it exists (refused otherwise).", "--overwrite")
]


def actor_name(given: str | None, settings: Settings) -> str:
    """--actor, else the login name, else pipeline.actor: the same default on every command."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (arbitrary container uid)
        return settings.pipeline.actor


F = TypeVar("F", bound=StrEnum)


def pick_format(given: F | None, json_flag: bool, default: F, json_value: F) -> F:
    """``--format`` with ``--json`` as its alias; both, disagreeing, is refused (exit 2)."""
    if json_flag:
        if given is not None and given != json_value:
            raise errors.ConfigError(f"--json and --format {given.value} disagree: give one")
        chosen = json_value
    else:
        chosen = default if given is None else given
    streams.mark_json(chosen == json_value)
    return chosen


def new_file(path: Path, overwrite: bool) -> None:
    """Evidence files (exports, checkpoints, backups) are never replaced silently."""
    if str(path) != "-" and path.exists() and not overwrite:
        raise errors.ConfigError(f"{path} exists; pass --overwrite to replace it")


class Format(StrEnum):
    """What most commands print: text for people (default) or one JSON document."""

    table = "table"
    json = "json"


FormatOption = Annotated[Format | None, typer.Option("--format", help="table (default) or json.")]
SummaryOption = Annotated[
    Format | None,
    typer.Option("--format", help="table (one line; default) or json (the counts, for scripts)."),
]


def wants_json(fmt: Format | None, json_flag: bool) -> bool:
    return pick_format(fmt, json_flag, Format.table, Format.json) is Format.json
