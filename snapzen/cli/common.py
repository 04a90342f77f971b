"""What every command shares: the --config option, settings loading, error → exit code mapping."""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from snapzen.support import errors

if TYPE_CHECKING:
    from snapzen.support.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $SNAPZEN_CONFIG; environment variables override it).",
        envvar="SNAPZEN_CONFIG",
        show_envvar=True,
    ),
]


def settings_from(config: Path | None) -> Settings:
    """Load settings, set up logging, and register every secret with the log scrubber."""
    # Imported here, not at module level: pydantic-settings and structlog (which pulls in
    # rich) cost ~0.2 s of start-up that `--help` and argument errors should not pay.
    from snapzen.support.log import configure_logging, register_secret
    from snapzen.support.settings import SECRET_FIELDS, load_settings

    settings = load_settings(config)
    configure_logging(settings.log.level, settings.log.format)
    for section, name in SECRET_FIELDS:
        secret = getattr(getattr(settings, section), name)
        if secret is not None:
            register_secret(secret.get_secret_value())
    return settings


def fail(message: str, code: int) -> None:
    """One clean line on stderr, then exit with ``code``."""
    typer.echo(f"snapzen: error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map the error hierarchy to the exit codes of DESIGN.md; no tracebacks for users."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except errors.ConfigError as exc:
            fail(str(exc), errors.EXIT_USAGE)
        except errors.LockHeld as exc:
            typer.echo(f"snapzen: {exc}", err=True)
            raise typer.Exit(errors.EXIT_OK) from None
        except errors.SnapzenError as exc:
            fail(f"{type(exc).__name__}: {exc}", errors.EXIT_ABORTED)
        except (sqlite3.Error, OSError) as exc:
            # Disk full, database locked for too long, a file vanished mid-run: one line, no
            # traceback; the run row (if any) already says 'aborted'.
            from snapzen.support.log import (
                scrub_personal,  # lazy: start-up time (see settings_from)
            )

            fail(f"{type(exc).__name__}: {scrub_personal(str(exc))}", errors.EXIT_ABORTED)
        except KeyboardInterrupt:
            typer.echo("snapzen: interrupted", err=True)
            raise typer.Exit(errors.EXIT_ABORTED) from None
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def echo_json(payload: Any) -> None:
    import json

    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
