"""Start-up cost of the CLI: heavy modules are imported only by the commands that use them.

Every `snapzen` invocation (each cron sync, each backfill slice, every `--help`) imports
snapzen.cli.main to register the commands. The modules below used to be imported at module
level there and cost ~0.3 s before any command ran; the CLI modules now import them inside the
functions that need them. A new top-level import of one of them fails these tests.

Each check runs in a fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import LEDGER_KEY, create_ledger

# Never needed to register the commands or to print their --help.
HEAVY = (
    "datasette",
    "faker",
    "werkzeug",
    "requests",
    "sqlite_utils",
    "structlog",
    "pydantic_settings",
    "filelock",
    "schedule",
    "snapzen.support.settings",
    "snapzen.support.log",
    "snapzen.policy.models",
    "snapzen.sync.pipeline",
    "snapzen.commands.service",
    "snapzen.clients.http",
    "snapzen.clients.zendesk",
    "snapzen.clients.snapengage",
    "snapzen.sandbox.server",
    "snapzen.ledger.store.db",
    "snapzen.commands.erase",
    "snapzen.ledger.evidence.web",
)
# Typer itself imports these to render --help (rich tables; pydantic for its option
# coercion), so they are only absent when the commands are merely registered.
HEAVY_UNTIL_HELP = ("rich", "rich.console", "rich.table", "pydantic")

_SCRIPT = """
import json, sys
sys.argv = ["snapzen", *sys.argv[1:]]
from snapzen.cli import main
if len(sys.argv) > 1:
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
sys.stdout.flush()
sys.stderr.write("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(*argv: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    _, _, listing = done.stderr.rpartition("@@MODULES@@")
    return set(json.loads(listing)), done.stdout


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def test_registering_the_commands_imports_nothing_heavy() -> None:
    modules, _ = _modules_after()
    assert "snapzen.cli.main" in modules
    assert _loaded(modules, HEAVY + HEAVY_UNTIL_HELP) == []


def test_backfill_help_imports_nothing_heavy() -> None:
    modules, out = _modules_after("backfill", "--help")
    assert "Fetch and import a date range" in out
    assert _loaded(modules, HEAVY) == []


def test_top_level_help_lists_every_command_without_heavy_imports() -> None:
    modules, out = _modules_after("--help")
    for command in ("sync", "status", "run", "backfill", "retry", "dismiss", "sandbox"):
        assert command in out
    for group in ("ledger", "retention"):
        assert group in out
    assert _loaded(modules, HEAVY) == []


# What a scrape or a container HEALTHCHECK (every few seconds) never needs: the HTTP stack.
HTTP_STACK = ("requests", "snapzen.clients.http", "snapzen.clients.zendesk")


@pytest.mark.parametrize("argv", [["--format", "prometheus"], ["--json"]])
def test_status_and_its_prometheus_text_import_no_http_client(
    argv: list[str], tmp_path: Path
) -> None:
    """They read the ledger alone: the reconcile check's findings they show must not bring
    the Zendesk client (and ~0.3 s of imports) with them."""
    ledger = create_ledger(tmp_path / "ledger.db")
    env = {"SNAPZEN_LEDGER__PATH": str(ledger), "SNAPZEN_LEDGER__KEY": LEDGER_KEY}
    modules, out = _modules_after("status", *argv, env=env)
    assert "snapzen_reconcile_findings" in out or '"last_reconcile"' in out
    assert _loaded(modules, HTTP_STACK) == []
