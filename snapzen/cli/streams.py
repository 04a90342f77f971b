"""What the command line promises about its standard output, whatever happens:

- a reader that closes the pipe early (``snapzen ledger list | head``) ends the command
  quietly, as coreutils do: no traceback, no error line, exit status 141 (128 + SIGPIPE,
  what a shell reports for ``seq 1000000 | head``);
- a command asked for JSON (``--format json`` / ``--json``) prints one JSON document on
  stdout in every outcome, also when it did not run (another run holds the lock) or failed:
  ``{"outcome": "skipped" | "error" | "interrupted", "message": ..., "exit_code": N}``.

Python ignores SIGPIPE (so a sync writing to a closed socket gets an exception, not death);
the closed stdout is recognised instead, by polling its descriptor for POLLERR.
"""

from __future__ import annotations

import json
import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE (13): what the shell shows for coreutils in this case


@dataclass
class _Mode:
    json: bool = False


MODE = _Mode()


def mark_json(chosen: bool = True) -> None:
    """The command resolved its format to JSON: outcomes without output print JSON too."""
    MODE.json = chosen


def reset() -> None:
    MODE.json = False


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


def outcome_json(outcome: str, message: str, exit_code: int) -> None:
    """In JSON mode, the document a command prints when it has no result of its own."""
    if not MODE.json:
        return
    payload: dict[str, Any] = {"outcome": outcome, "message": message, "exit_code": exit_code}
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
