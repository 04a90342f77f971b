"""A real SQLite ledger built through append_events (no mocks), and a tampering helper."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from snapzen.ledger.evidence.chain import append_events, subject_ref
from snapzen.ledger.evidence.events_table import APPEND_ONLY_TRIGGERS
from snapzen.ledger.store.db import open_db, transaction
from tests.fakes import new_ledger_db

KEY_TEXT = "test-ledger-key-0123456789abcdef"
KEY = KEY_TEXT.encode()
ALICE = "Alice@Example.com"
BOB = "bob@example.org"


def transfer_fields(i: int, **overrides: Any) -> dict[str, Any]:
    """The i-th transfer: months cycle through 2024-01..2024-06, tickets are 1000+i."""
    month = 1 + i % 6
    fields: dict[str, Any] = {
        "event": "transfer",
        "case_id": f"case-{i}",
        "widget_id": "w1" if i % 2 else "w2",
        "subject_ref": subject_ref(KEY, ALICE if i % 3 == 0 else f"visitor{i}@example.net"),
        "origin_country": ("DE", "FR", "IE")[i % 3],
        "recipient": "Zendesk, Inc.",
        "destination_country": "US",
        "legal_basis": "art46",
        "mechanism_ref": "SCC 2021/914 module 2",
        "data_categories": ["contact_data", "chat_content"],
        "redactions": {"card": 0},
        "ticket_id": 1000 + i,
        "recorded_at": f"2024-{month:02d}-{1 + i % 27:02d}T10:00:00Z",
        "retention_until": f"2026-{month:02d}-01",
        "run_id": "run-1",
        "actor": "cron",
    }
    fields.update(overrides)
    return fields


def append(db: sqlite_utils.Database, rows: Iterable[dict[str, Any]]) -> None:
    """Append the rows; a transfer also gets its synced ``cases`` row, as the sync writes
    both in one transaction (verify checks that the two agree)."""
    with transaction(db) as conn:
        for fields in rows:
            append_events(conn, [fields])
            if fields.get("event", "transfer") == "transfer":
                stamp = fields["recorded_at"]
                conn.execute(
                    """INSERT OR IGNORE INTO cases (case_id, widget_id, status, ticket_id,
                           subject_ref, first_seen_at, updated_at, synced_at)
                       VALUES (?, ?, 'synced', ?, ?, ?, ?, ?)""",
                    (
                        fields["case_id"], fields.get("widget_id") or "w1",
                        fields.get("ticket_id"), fields.get("subject_ref"), stamp, stamp, stamp,
                    ),
                )  # fmt: skip


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    db = new_ledger_db(path)
    append(db, (transfer_fields(i) for i in range(1, 11)))  # seq 1..10
    db.conn.close()
    return path


@pytest.fixture
def db(ledger_path: Path) -> sqlite_utils.Database:
    return open_db(ledger_path)


Tamper = Callable[..., None]


def edit(seq: int, **values: str) -> str:
    """The SQL an attacker runs to change values of row ``seq``: the columns are generated
    from the row's record, so the record is what gets edited."""
    changes = ", ".join(f"'$.{column}', '{value}'" for column, value in values.items())
    return f"UPDATE events SET record = json_set(record, {changes}) WHERE seq = {seq}"


@pytest.fixture
def tamper(ledger_path: Path) -> Tamper:
    """Run SQL on the ledger file directly as a careful attacker: the append-only triggers
    dropped, then put back as they were (verify names a missing one)."""

    def run(*statements: str | tuple[str, Iterable[Any]]) -> None:
        conn = sqlite3.connect(ledger_path)
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        for statement in statements:
            if isinstance(statement, tuple):
                conn.execute(statement[0], tuple(statement[1]))
            else:
                conn.execute(statement)
        for trigger in APPEND_ONLY_TRIGGERS:
            conn.execute(trigger)
        conn.commit()
        conn.close()

    return run
