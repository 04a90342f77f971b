"""The batched outbox writes (record_synced, append_events) and the orjson fast paths
(canonical row JSON, container columns, stored drafts) change nothing observable: the
ledger rows, their hashes and the cases rows are those the one-row-at-a-time code wrote.

The ``_reference_*`` functions are the code as it was before batching: the oracle."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from snapzen.ledger.evidence import chain
from snapzen.ledger.evidence.chain import GENESIS, append_events
from snapzen.ledger.evidence.events import CHAINED_COLUMNS
from snapzen.ledger.evidence.verify import verify_chain
from snapzen.ledger.rights.period_keys import pseudonymize
from snapzen.ledger.store import outbox
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support import clock

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


# ---------------------------------------------------------------- the oracle


def _reference_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reference_canonical_json(row: Mapping[str, Any]) -> str:
    return _reference_text({column: row.get(column) for column in CHAINED_COLUMNS})


def _reference_row_hash(row: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(str(row["prev_hash"]).encode("ascii"))
    digest.update(b"\n")
    digest.update(_reference_canonical_json(row).encode("utf-8"))
    return digest.hexdigest()


# Chain version 3: the record is the JSON object of every non-empty column but seq, prev_hash
# and hash, in schema order, without spaces; the hash covers prev_hash, seq and the record.
_CONTENT = CHAINED_COLUMNS[1:-1]


def _reference_append_event(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> None:
    # The column recorded_at is the record's transferred_at (its name before schema 9).
    fields = {("transferred_at" if k == "recorded_at" else k): v for k, v in fields.items()}
    unknown = set(fields) - set(CHAINED_COLUMNS)
    if unknown:
        raise ValueError(f"unknown transfer columns: {sorted(unknown)}")
    fields = pseudonymize(conn, fields)  # a chat's reference keyed by its month, as chained
    head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, last_hash = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    content: dict[str, Any] = {column: None for column in _CONTENT}
    for column, value in fields.items():
        if column in content:
            content[column] = _reference_text(value) if isinstance(value, list | dict) else value
    content["event"] = content["event"] or "transfer"
    present = {column: value for column, value in content.items() if value is not None}
    record = json.dumps(present, separators=(",", ":"), ensure_ascii=False)
    seq = last_seq + 1
    hashed = f"{last_hash}\n{seq}\n{record}".encode()
    conn.execute(
        "INSERT INTO events (seq, prev_hash, hash, chain_version, record) VALUES (?, ?, ?, 3, ?)",
        (seq, last_hash, hashlib.sha256(hashed).hexdigest(), record),
    )


def _reference_record_synced(
    db: sqlite_utils.Database, synced: Mapping[str, int], now: datetime, run_id: str, actor: str
) -> int:
    stamp = clock.format(now)
    appended = 0
    with transaction(db) as conn:
        for case_id, ticket_id in synced.items():
            row = conn.execute(
                "SELECT status, transfer_draft, widget_id FROM cases WHERE case_id = ?",
                (case_id,),
            ).fetchone()
            if row is None or row[0] == "synced":
                continue
            draft = json.loads(row[1]) if row[1] else {}
            transfer = draft.get("transfer")
            if transfer:
                fields = dict(transfer)
                fields.update(
                    ticket_id=ticket_id,
                    recorded_at=stamp,
                    run_id=run_id,
                    actor=actor,
                    case_id=case_id,
                    event="transfer",
                )
                _reference_append_event(conn, fields)
            else:  # sent, not a restricted transfer: the decision is chained too
                sent = {
                    "event": "sent",
                    "case_id": case_id,
                    "recorded_at": stamp,
                    "details": {"reason": draft.get("not_restricted_reason")},
                    "widget_id": row[2],
                    "ticket_id": ticket_id,
                    "subject_ref": draft.get("subject_ref"),
                    "run_id": run_id,
                    "actor": actor,
                    "legal_basis": draft.get("legal_basis"),
                }
                _reference_append_event(conn, sent)
            appended += 1
            conn.execute(
                """UPDATE cases SET status = 'synced', ticket_id = ?, synced_at = ?, error = NULL,
                       raw = NULL, raw_purged_at = ?, updated_at = ?
                   WHERE case_id = ?""",
                (ticket_id, stamp, stamp, stamp, case_id),
            )
    return appended


def _reference_draft_text(draft: Mapping[str, Any]) -> str:
    return json.dumps(draft, sort_keys=True, default=str)


# ---------------------------------------------------------------- property tests

_KEYS = st.text(max_size=8)
_INTS = st.integers() | st.integers(min_value=-(2**63) - 2, max_value=2**64 + 2)
_SCALAR = st.none() | st.booleans() | _INTS | st.text() | st.floats()
_JSONISH = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """("ok", result) or ("raises", exception type): the two must agree on both."""
    try:
        return "ok", call(*args)
    except Exception as exc:
        return "raises", type(exc)


@given(st.dictionaries(st.sampled_from(CHAINED_COLUMNS), _SCALAR))
def test_canonical_json_and_row_hash_are_byte_identical(values: dict[str, Any]) -> None:
    row = {**values, "prev_hash": GENESIS}
    assert _outcome(chain.canonical_json, row) == _outcome(_reference_canonical_json, row)
    assert _outcome(chain.row_hash, row) == _outcome(_reference_row_hash, row)


@given(st.lists(_JSONISH, max_size=4) | st.dictionaries(_KEYS, _JSONISH, max_size=4))
def test_container_columns_are_byte_identical(value: list[Any] | dict[str, Any]) -> None:
    assert _outcome(chain.json_text, value) == _outcome(_reference_text, value)


@given(st.text(), st.text())
def test_key_order_matches_json_for_any_text(first: str, second: str) -> None:
    """orjson sorts keys by UTF-8 bytes, json by code point: the same order (BMP vs astral)."""
    value = {first: 1, second: 2, "\ue000": 3, "\U0001f600": 4}
    assert _outcome(chain.json_text, value) == _outcome(_reference_text, value)


def _same_value(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_value, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same_value(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


@given(st.dictionaries(_KEYS, _JSONISH, max_size=6))
def test_stored_draft_reads_back_as_before(draft: dict[str, Any]) -> None:
    before = _outcome(_reference_draft_text, draft)
    after = _outcome(outbox.draft_text, draft)
    assert before[0] == after[0]
    if before[0] == "ok":
        assert _same_value(json.loads(after[1]), json.loads(before[1]))


class _Basis(enum.Enum):
    ART46 = "art46"


class _StrBasis(enum.StrEnum):
    ART46 = "art46"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        date(2025, 1, 2),
        uuid.UUID(int=7),
        _Basis.ART46,
        _StrBasis.ART46,
        float("nan"),
        float("inf"),
        1e16,
        2**70,
        "\ud800",
        b"bytes",
        ("a", 1),
    ],
    ids=repr,
)
def test_draft_values_json_would_stringify_read_back_as_before(value: Any) -> None:
    draft = {"outcome": "eligible", "transfer": {"x": value, "y": [value]}}
    before = json.loads(_reference_draft_text(draft))
    assert _same_value(json.loads(outbox.draft_text(draft)), before)


# ---------------------------------------------------------------- record_synced


def _transfer(i: int) -> dict[str, Any] | None:
    if i % 5 == 0:
        return None  # not restricted: no ledger row
    return {
        "widget_id": f"w{i % 3}",
        "subject_ref": None if i % 7 == 0 else f"{i:064x}",
        "origin_country": ("DE", "FR", "unknown")[i % 3],
        "recipient": "Zendesk, Inc.",
        "destination_country": "US",
        "legal_basis": "art49_1a",
        "mechanism_ref": None if i % 2 else "contract necessity configured for widget w1",
        "consent_variable": "gdpr_consent",
        "consent_value": 'Jä ✓ \U0001f600 "quoted" \\ \n' if i % 4 == 0 else "yes",
        "consent_source": "labels",
        "consent_observed_at": "2025-01-02T03:04:05+00:00",
        "data_categories": ["contact_data", "chat_content", "location"],
        "redactions": {"detector": "snapzen-redaction/1", "counts": {"email": i % 3, "é": 1}},
        "retention_until": "2027-01-02",
    }


def _build(path: Path, cases: int, *, ledger_rows: int = 0) -> sqlite_utils.Database:
    """A ledger with earlier rows (a non-empty chain head) and ``cases`` cases pushing,
    some of them already synced (by an earlier recovery)."""
    db = open_db(path, create=True)
    with transaction(db) as conn:
        # The same month keys in every ledger built here (snapzen.ledger.rights.period_keys makes
        # random ones), so that two builds can be compared row for row.
        conn.executemany(
            "INSERT INTO period_keys (period, key, created_at) VALUES (?, ?, 'test')",
            [
                (
                    f"{y}-{m:02d}",
                    bytes(32),
                )
                for y in range(2024, 2028)
                for m in range(1, 13)
            ],
        )
        for i in range(ledger_rows):
            append_events(
                conn,
                [
                    {
                        "event": "erased",
                        "case_id": f"old-{i}",
                        "recorded_at": "2025-01-01T00:00:00Z",
                        "details": {"n": i},
                    }
                ],
            )
    staged = [
        outbox.StagedCase(f"case-{i:05d}", "w", '{"raw": 1}', NOW, "chat") for i in range(cases)
    ]
    outbox.stage(db, staged, NOW)
    drafts = {
        f"case-{i:05d}": {
            "outcome": "eligible",
            "legal_basis": "art49_1a",
            "subject_ref": None,
            "transfer": _transfer(i),
            "batch_index": i % 100,
        }
        for i in range(cases)
    }
    outbox.mark_pushing(db, "b1", drafts, NOW, "run-0")
    with transaction(db) as conn:
        conn.execute("UPDATE cases SET status = 'synced' WHERE case_id LIKE '%3'")
    return db


def _dump(db: sqlite_utils.Database) -> tuple[list[Any], list[Any]]:
    return (
        db.execute("SELECT * FROM events ORDER BY seq").fetchall(),
        db.execute("SELECT * FROM cases ORDER BY case_id").fetchall(),
    )


@pytest.mark.parametrize(("cases", "ledger_rows"), [(0, 0), (7, 0), (1203, 3)])
def test_record_synced_writes_what_the_row_by_row_code_wrote(
    tmp_path: Path, cases: int, ledger_rows: int
) -> None:
    old = _build(tmp_path / "old.db", cases, ledger_rows=ledger_rows)
    new = _build(tmp_path / "new.db", cases, ledger_rows=ledger_rows)
    # Not in id order (ledger rows follow the mapping's order), more than one IN-list
    # chunk, and ids that do not exist.
    synced = {f"case-{i:05d}": 5000 + i for i in reversed(range(cases))}
    synced.update({"missing-1": 1, "missing-2": 2})

    expected = _reference_record_synced(old, synced, NOW, "run-1", "cron")
    assert outbox.record_synced(new, synced, NOW, run_id="run-1", actor="cron")[0] == expected
    assert _dump(new) == _dump(old)
    assert verify_chain(new.conn).ok
    if cases:
        assert expected > 0
        # A second recording of the same set appends nothing and changes nothing.
        assert outbox.record_synced(new, synced, NOW, run_id="run-2", actor="cron") == (0, 0)
        assert _dump(new) == _dump(old)


@pytest.mark.parametrize(("cases", "bogus"), [(20, 18), (1203, 1100)])
def test_record_synced_is_one_transaction(tmp_path: Path, cases: int, bogus: int) -> None:
    """Even when its rows are built a chunk at a time: a refusal in the last chunk leaves
    the earlier chunks unwritten too."""
    db = _build(tmp_path / "l.db", cases, ledger_rows=2)
    with transaction(db) as conn:  # a draft the ledger refuses, late in the mapping
        conn.execute(
            """UPDATE cases SET transfer_draft = '{"transfer": {"bogus_column": 1}}'
               WHERE case_id = ?""",
            (f"case-{bogus:05d}",),
        )
    before = _dump(db)
    with pytest.raises(ValueError, match="bogus_column"):
        outbox.record_synced(
            db, {f"case-{i:05d}": i for i in range(cases)}, NOW, run_id="r", actor="a"
        )
    assert _dump(db) == before


def test_append_events_of_rows_equals_one_keyword_event_per_call(tmp_path: Path) -> None:
    one, many = (
        open_db(tmp_path / "one.db", create=True),
        open_db(tmp_path / "many.db", create=True),
    )
    events = [
        {
            "event": "transfer",
            "case_id": f"c{i}",
            "ticket_id": i,
            "recorded_at": f"2025-01-0{i + 1}T00:00:00Z",
            "details": {"k": [i, None, "ü"]},
        }
        for i in range(5)
    ]
    with transaction(one) as conn:
        for fields in events:
            assert append_events(conn, **fields)[0]["case_id"] == fields["case_id"]
        with pytest.raises(TypeError, match="not both"):
            append_events(conn, events[:1], **events[0])
    with transaction(many) as conn:
        rows = append_events(conn, events)
        assert append_events(conn, []) == []
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5]
    assert _dump(one) == _dump(many)
    with pytest.raises(ValueError, match="nope"), transaction(many) as conn:
        append_events(conn, [{"event": "sent", "case_id": "x", "recorded_at": "t"}, {"nope": 1}])
    assert _dump(one) == _dump(many)
