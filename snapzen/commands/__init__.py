"""Commands: one use case each (sync, run, backfill, retry, dismiss, retention, erase, status).

They compose the sync engine, the clients and the ledger; the CLI is a thin layer over them.

The CLI imports this package once (``from snapzen import commands``) and calls
``commands.<module>.<function>``: a module is imported when first named (``__getattr__``,
PEP 562), so registering the commands, ``--help`` and argument errors import none of them
(pydantic, sqlite-utils, the HTTP stack: start-up time, tests/unit/cli/test_startup_imports.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what mypy sees of the modules the CLI names through the package
    from snapzen.commands import access_request as access_request
    from snapzen.commands import auditor_ui as auditor_ui
    from snapzen.commands import backfill as backfill
    from snapzen.commands import backfill_progress as backfill_progress
    from snapzen.commands import checkpoints as checkpoints
    from snapzen.commands import configure as configure
    from snapzen.commands import copies as copies
    from snapzen.commands import erase_person as erase_person
    from snapzen.commands import init as init
    from snapzen.commands import ledger_queries as ledger_queries
    from snapzen.commands import legal_holds as legal_holds
    from snapzen.commands import reapply as reapply
    from snapzen.commands import reconcile as reconcile
    from snapzen.commands import reconcile_check as reconcile_check
    from snapzen.commands import report_text as report_text
    from snapzen.commands import request_desk as request_desk
    from snapzen.commands import retention as retention
    from snapzen.commands import retry as retry
    from snapzen.commands import run as run
    from snapzen.commands import service as service
    from snapzen.commands import status as status


def __getattr__(name: str) -> ModuleType:
    """``commands.service`` and the like: the module, imported on first use."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
