"""A command that only reads the ledger closes it before it returns.

`snapzen ledger requests`, `ledger notices`, `ledger holds`, `ledger verify`, `ledger
report`, `ledger list`, `ledger export`, `ledger subject` and `status` open the ledger
read-only; a connection left to the garbage collector keeps the file
open (its descriptors, and on Windows the file itself, so a restore cannot move it aside) for
as long as the process runs, e.g. inside the auditor UI or a test run. The garbage collector is held
off here, so only an explicit close frees the file. Linux only: the open files are read from
/proc/self/fd.
"""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands import checkpoints, ledger_queries, legal_holds, request_desk, status
from snapzen.support import errors
from snapzen.support.settings import Settings, load_settings
from tests.ledger_fixtures import ALICE, KEY_TEXT

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc/self/fd"
)


def listed(settings: Settings, *, table_on_terminal: bool) -> list[dict[str, Any]]:
    found = ledger_queries.filters()
    with ledger_queries.listing(
        settings, found, limit=None, table_on_terminal=table_on_terminal
    ) as rows:
        return list(rows.rows)


def subject(settings: Settings) -> list[dict[str, Any]]:
    with ledger_queries.subject_rows(settings, ALICE, None, None) as found:
        found.forgotten()
        return list(found.rows)


def exported(settings: Settings) -> int:
    return ledger_queries.export(
        settings, ledger_queries.filters(), Path("-"), "csv", io.StringIO()
    )


READERS: dict[str, Callable[[Settings], Any]] = {
    "ledger requests": lambda s: request_desk.listing(s, date(2026, 1, 1)),
    "ledger notices": request_desk.owed,
    "ledger holds": legal_holds.active,
    "ledger verify": lambda s: checkpoints.verify_ledger(s, [], [], key_file=None, thorough=True),
    "ledger report": lambda s: ledger_queries.build_report(s, ledger_queries.filters()),
    "ledger list": lambda s: listed(s, table_on_terminal=False),
    "ledger list (a table on a terminal)": lambda s: listed(s, table_on_terminal=True),
    "ledger export": exported,
    "ledger subject": subject,
    "status": lambda s: status.read_status(s, datetime(2026, 1, 1, tzinfo=UTC)),
}


def open_files_under(folder: Path) -> list[str]:
    here = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith(str(folder)):
            here.append(target)
    return here


@pytest.fixture
def settings(ledger_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(ledger_path))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY_TEXT)
    return load_settings()


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("command", READERS)
def test_a_read_only_command_leaves_the_ledger_file_closed(
    command: str, settings: Settings, ledger_path: Path, no_gc: None
) -> None:
    READERS[command](settings)
    assert open_files_under(ledger_path.parent) == []


def test_an_export_for_an_unknown_widget_leaves_no_file_and_the_ledger_closed(
    settings: Settings, ledger_path: Path, tmp_path: Path, no_gc: None
) -> None:
    out = tmp_path / "out" / "rows.csv"
    with pytest.raises(errors.ConfigError, match="--widget 'nope'"):
        ledger_queries.export(
            settings, ledger_queries.filters(widget="nope"), out, "csv", io.StringIO()
        )
    assert not out.parent.exists()
    assert open_files_under(ledger_path.parent) == []
