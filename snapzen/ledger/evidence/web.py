"""Read-only auditor web UI: Datasette over a sanitized snapshot of the ledger.

Why a snapshot rather than the live file: ``cases.raw`` holds SnapEngage payloads (names,
emails, transcripts) until a case is terminal. Datasette can hide a table from its index but
not a column from arbitrary SQL, so the only reliable way to keep ``raw`` out of reach is to
serve a copy without it. The copy is taken with SQLite's online backup API (consistent even
while a sync writes), the column is dropped and the file VACUUMed so the bytes are gone, and
Datasette serves it with ``-i`` (immutable: no writes possible, not even through SQL). The
snapshot's SHA-256 is printed so an auditor can tie what they saw to a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from snapzen.ledger.evidence.audit import (
    BY_BASIS_SQL,
    BY_MONTH_SQL,
    NOT_DELETED_SQL,
    SUBJECT_COLUMNS,
)
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights.period_keys import KEYED_SQL
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.files import connect, copy_database
from snapzen.support.atomic import private_dir, write_private

DB_NAME = "ledger"  # Datasette names the database after the file stem: /ledger
# Personal data, and key material, that never leave the live file.
HIDDEN_COLUMNS = {"cases": ("raw",), "period_keys": ("key",)}

# The prose (title, table and column descriptions, canned queries) is Datasette metadata in
# web_metadata.json beside this module (with what each event records); here only what is
# computed is filled in: the transfers view's columns (the events' own) and the SQL shared
# with the report.
METADATA_FILE = "web_metadata.json"
_ON_TRANSFERS = {"time": "transferred_at", "table": "transfers", "where": ""}
# The {names} the queries' sql in the file may use.
SQL_NAMES = {
    "subject_columns": ", ".join(SUBJECT_COLUMNS),
    "keyed_events": KEYED_SQL,
    "not_deleted": NOT_DELETED_SQL,
    "withheld": CaseStatus.WITHHELD.value,
    "by_month": BY_MONTH_SQL.format(n="transfers", **_ON_TRANSFERS),
    "by_basis": BY_BASIS_SQL.format(**_ON_TRANSFERS),
}
# The events' columns the transfers view does not have (it names the time transferred_at).
_NOT_IN_TRANSFERS = ("event", "recorded_at", "prev_hash", "chain_version", "record")

_FILE: dict[str, Any] = json.loads(
    resources.files("snapzen.ledger.evidence").joinpath(METADATA_FILE).read_text(encoding="utf-8")
)
_DATABASE: dict[str, Any] = _FILE["databases"][DB_NAME]
TABLE_DESCRIPTIONS: dict[str, str] = {
    table: entry["description"] for table, entry in _DATABASE["tables"].items()
}
COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    table: entry["columns"] for table, entry in _DATABASE["tables"].items() if "columns" in entry
}
_EVENTS = COLUMN_DESCRIPTIONS["events"]
# What each event records, "name = meaning; ...": every Event (KeyError here otherwise).
EVENT_MEANINGS: dict[str, str] = {event: _FILE["event_meanings"][event] for event in Event}
_EVENTS["event"] = _EVENTS["event"].format(
    events="; ".join(f"{name} = {meaning}" for name, meaning in EVENT_MEANINGS.items())
)
COLUMN_DESCRIPTIONS["transfers"] = {
    **{name: text for name, text in _EVENTS.items() if name not in _NOT_IN_TRANSFERS},
    **COLUMN_DESCRIPTIONS["transfers"],
}
CANNED_QUERIES: dict[str, dict[str, Any]] = {
    name: {**query, "sql": query["sql"].format_map(SQL_NAMES)}
    for name, query in _DATABASE["queries"].items()
}


def make_snapshot(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest`` (0600, one self-contained file: no -wal beside it) without
    the hidden columns; return the file's SHA-256."""
    copy_database(source, dest)
    with connect(dest) as out:
        for table, columns in HIDDEN_COLUMNS.items():
            present = {row[1] for row in out.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column in present:
                    out.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        out.commit()
        out.execute("VACUUM")  # rewrite the file so no dropped bytes survive in free pages
    return file_sha256(dest)


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def column_descriptions(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """A description for every column present (generated columns too)."""
    written = COLUMN_DESCRIPTIONS.get(table, {})
    return {
        str(row[1]): written.get(str(row[1]), "(undocumented column)")
        for row in conn.execute(f"PRAGMA table_xinfo({table})")
    }


def build_metadata(snapshot: Path, *, sha256: str | None = None) -> dict[str, Any]:
    with connect(snapshot, read_only=True) as conn:
        tables: dict[str, dict[str, Any]] = {
            table: {
                **_DATABASE["tables"].get(table, {}),  # sort_desc, where the file says
                "description": TABLE_DESCRIPTIONS.get(table, "(undocumented table)"),
                "columns": column_descriptions(conn, table),
            }
            for (table,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        }
    snapshot_note = f" Snapshot SHA-256: {sha256}." if sha256 else ""
    return {
        "title": _FILE["title"],
        "description": _FILE["description"] + snapshot_note,
        "databases": {
            DB_NAME: {
                "description": _DATABASE["description"],
                "tables": tables,
                "queries": CANNED_QUERIES,
            }
        },
    }


def serve_command(
    snapshot: Path,
    metadata: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    sql_time_limit_ms: int = 5000,
    extra: Sequence[str] = (),
) -> list[str]:
    """`datasette serve -i` (immutable) — run with this interpreter so the venv's is used."""
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        "-i",
        str(snapshot),
        "--metadata",
        str(metadata),
        "--host",
        host,
        "--port",
        str(port),
        # Report queries scan the whole table; 1 s (the default) is too short at 1M rows.
        "--setting",
        "sql_time_limit_ms",
        str(sql_time_limit_ms),
        *extra,
    ]


def prepare(source: Path, workdir: Path) -> tuple[Path, Path, str]:
    """Snapshot + metadata file in ``workdir``; returns (snapshot, metadata, sha256)."""
    private_dir(workdir)
    snapshot = workdir / f"{DB_NAME}.db"
    sha = make_snapshot(source, snapshot)
    metadata = workdir / "metadata.json"
    write_private(metadata, json.dumps(build_metadata(snapshot, sha256=sha), indent=2) + "\n")
    return snapshot, metadata, sha
