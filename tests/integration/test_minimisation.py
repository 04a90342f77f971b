"""Local minimisation, tested on the bytes on disk: a synced chat's raw payload (transcript,
email, IP address) leaves the database file AND its -wal/-shm files by the end of the run;
a pending chat's payload is still there (the control that shows the check can fail)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import service
from snapzen.ledger.store import db as locked
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent

MARKER = "MINIMISE-ME-5f1c9e2a-transcript"
EMAIL = "unique.person.8c31@example.org"
IP = "198.51.100.173"
PERSONAL = (MARKER, EMAIL, IP)


def marked_case(case_id: str, minutes_ago: int) -> dict[str, Any]:
    case = make_case(
        case_id,
        started=recent(minutes_ago),
        email=EMAIL,
        messages=[("", f"my reference is {MARKER}"), ("Agent Smith", "thanks")],
    )
    case["ip_address"] = IP  # SnapEngage sends the visitor's IP; only the raw payload keeps it
    return case


def disk_bytes(db_path: Path) -> dict[str, bytes]:
    """The database file and every SQLite side file that exists next to it."""
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


def holding(files: dict[str, bytes], text: str) -> list[str]:
    needle = text.encode("utf-8")
    return [name for name, data in files.items() if needle in data]


@pytest.fixture
def attached_reader(settings: Settings) -> Iterator[sqlite3.Connection]:
    """An auditor's connection (Datasette) left open across the run. While any connection is
    open SQLite never checkpoints on close, so the -wal file survives the run: exactly the
    case where purged bytes could linger on disk."""
    open_db(settings.ledger.path).conn.close()  # create and migrate
    reader = sqlite3.connect(settings.ledger.path)
    reader.execute("SELECT COUNT(*) FROM cases").fetchall()  # a real reader, now idle
    yield reader
    reader.close()


def test_synced_payload_leaves_db_and_wal_files(
    settings: Settings, apis: SandboxApis, attached_reader: sqlite3.Connection
) -> None:
    apis.add_cases("w1", [marked_case("marked", 200)])
    result = service.sync(settings)
    assert result.counts.created == 1

    # The data really went to Zendesk (so the marker was in the payload we staged) ...
    assert MARKER in apis.tickets[0]["comments"][0]["value"]
    files = disk_bytes(settings.ledger.path)
    assert Path(f"{settings.ledger.path}-wal").exists(), "the reader should keep the WAL alive"
    # ... and nothing of it is left anywhere on disk.
    for text in PERSONAL:
        assert holding(files, text) == [], f"{text} still on disk"
    row = attached_reader.execute(
        "SELECT status, raw, raw_purged_at FROM cases WHERE case_id = 'marked'"
    ).fetchone()
    assert row[0] == "synced" and row[1] is None and row[2]


def test_control_pending_payload_is_on_disk(
    settings: Settings, apis: SandboxApis, attached_reader: sqlite3.Connection
) -> None:
    apis.add_cases("w1", [marked_case("running", 1)])  # not settled: stays pending
    service.sync(settings)
    files = disk_bytes(settings.ledger.path)
    for text in PERSONAL:
        assert holding(files, text), f"{text} should still be held while the case is pending"


def test_control_without_checkpoint_the_wal_keeps_purged_bytes(
    settings: Settings,
    apis: SandboxApis,
    attached_reader: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why the run ends with wal_checkpoint(TRUNCATE): without it the purge is not enough."""
    monkeypatch.setattr(locked, "checkpoint_wal", lambda db: None)
    apis.add_cases("w1", [marked_case("marked", 200)])
    service.sync(settings)
    files = disk_bytes(settings.ledger.path)
    assert holding(files, MARKER) == [f"{settings.ledger.path.name}-wal"]


def test_terminal_without_push_payload_also_leaves_disk(
    settings: Settings, apis: SandboxApis, attached_reader: sqlite3.Connection
) -> None:
    withheld = marked_case("refused", 200)
    withheld["javascript_variables"] = [{"name": "gdpr_consent", "value": "no"}]
    apis.add_cases("w1", [withheld])
    service.sync(settings)
    status = attached_reader.execute("SELECT status FROM cases WHERE case_id='refused'").fetchone()
    assert status == ("withheld",)
    for text in PERSONAL:
        assert holding(disk_bytes(settings.ledger.path), text) == []


def test_status_reports_raw_payloads_held_and_oldest_age(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [marked_case("running", 1), marked_case("done", 200)])
    service.sync(settings)
    runner = CliRunner()

    as_json = runner.invoke(app, ["status", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["raw_payloads_held"] == 1
    assert 0 <= report["raw_oldest_age_seconds"] < 600

    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0, table.output
    assert "raw payloads held: 1 (oldest " in " ".join(table.stdout.split())
