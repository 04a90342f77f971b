"""The tests' new ledgers (tests.fakes.create_ledger) are copies of one file migrated once per
process, then bound: they must be what `snapzen init` creates, or every test using them would
test another ledger."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snapzen.ledger.store.db import create_ledger, open_db
from snapzen.ledger.store.identity import read_meta
from tests import fakes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _shape(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    schema = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str)
    tables = [name for kind, name, _ in schema if kind == "table"]
    shape = {
        "schema": schema,
        "rows": {
            name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone() for name in tables
        },
        "meta": sorted(read_meta(conn)),
        "version": conn.execute("PRAGMA user_version").fetchone(),
        "journal": conn.execute("PRAGMA journal_mode").fetchone(),
        "modes": (stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)),
    }
    conn.close()
    return shape


def test_a_test_ledger_is_the_ledger_init_creates(tmp_path: Path) -> None:
    real = tmp_path / "real" / "snapzen.db"
    create_ledger(real, fakes.LEDGER_KEY.encode(), NOW).conn.close()
    copy = fakes.create_ledger(tmp_path / "copy" / "snapzen.db", now=NOW)
    assert _shape(copy) == _shape(real)
    meta = read_meta(open_db(copy, key=fakes.LEDGER_KEY.encode()).conn)
    assert meta["created_at"].startswith("2026-12-01T12:00") and meta["bound_by"] == "init"
    other = fakes.create_ledger(tmp_path / "other" / "snapzen.db")
    assert read_meta(sqlite3.connect(other))["ledger_id"] != meta["ledger_id"]
