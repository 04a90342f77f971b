"""Chain verification and signed checkpoints, against each tampering done with sqlite3."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapzen.ledger.evidence import checkpoint as signed
from snapzen.ledger.evidence import verify
from snapzen.ledger.evidence.chain import GENESIS, row_digest
from snapzen.ledger.evidence.events import KEY_OF, RECORD_COLUMNS
from snapzen.ledger.evidence.events_table import APPEND_ONLY_TRIGGERS
from snapzen.ledger.store.db import open_db
from snapzen.support.errors import ConfigError
from tests.ledger_fixtures import KEY, Tamper, append, edit, transfer_fields


def check(path: Path, *checkpoints: signed.Checkpoint) -> verify.VerifyResult:
    db = open_db(path, read_only=True)
    try:
        return verify.verify_ledger(db.conn, checkpoints)
    finally:
        db.conn.close()


def signed_head(path: Path) -> signed.Checkpoint:
    db = open_db(path, read_only=True)
    try:
        return signed.make(db.conn, KEY, created_at="2024-07-01T00:00:00Z")
    finally:
        db.conn.close()


def first(result: verify.VerifyResult) -> verify.Problem:
    assert result.first_problem is not None, "tampering went undetected"
    return result.first_problem


def rechain_from(path: Path, start: int) -> None:
    """What a capable attacker does after an edit: recompute every later prev_hash/hash."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")  # put back below
    prev = conn.execute("SELECT hash FROM events WHERE seq = ?", (start - 1,)).fetchone()
    prev_hash = prev[0] if prev else "0" * 64
    rows = conn.execute("SELECT * FROM events WHERE seq >= ? ORDER BY seq", (start,))
    for row in rows.fetchall():
        new_hash = row_digest(row["seq"], prev_hash, row["chain_version"], row["record"])
        conn.execute(
            "UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?",
            (prev_hash, new_hash, row["seq"]),
        )
        prev_hash = new_hash
    conn.execute(APPEND_ONLY_TRIGGERS[0])
    conn.commit()
    conn.close()


def test_intact_ledger_verifies(ledger_path: Path) -> None:
    result = check(ledger_path, signed_head(ledger_path))
    assert result.ok
    assert (result.rows, result.head_seq, result.checkpoints_checked) == (10, 10, 1)


def test_empty_ledger_verifies(tmp_path: Path) -> None:
    open_db(tmp_path / "empty.db", create=True).conn.close()
    result = check(tmp_path / "empty.db")
    assert result.ok and result.rows == 0 and result.head_hash == GENESIS


def test_edit_middle_row(ledger_path: Path, tamper: Tamper) -> None:
    tamper(edit(5, legal_basis="art45"))
    problem = first(check(ledger_path))
    assert (problem.seq, problem.kind) == (5, "edited")
    assert "seq 5" in problem.line()


def test_edit_last_row(ledger_path: Path, tamper: Tamper) -> None:
    tamper(edit(10, retention_until="2099-01-01"))
    assert (first(check(ledger_path)).seq, first(check(ledger_path)).kind) == (10, "edited")


def test_delete_middle_row(ledger_path: Path, tamper: Tamper) -> None:
    tamper("DELETE FROM events WHERE seq = 4")
    problem = first(check(ledger_path))
    assert (problem.seq, problem.kind) == (4, "missing")


def test_delete_middle_row_and_renumber(ledger_path: Path, tamper: Tamper) -> None:
    tamper("DELETE FROM events WHERE seq = 4", "UPDATE events SET seq = seq - 1 WHERE seq > 4")
    problem = first(check(ledger_path))
    assert problem.seq == 4 and problem.kind == "relinked"


def test_delete_last_row_is_caught_only_by_a_checkpoint(ledger_path: Path, tamper: Tamper) -> None:
    point = signed_head(ledger_path)
    tamper("DELETE FROM events WHERE seq = 10")
    assert check(ledger_path).ok  # the chain alone cannot see a truncation
    problem = first(check(ledger_path, point))
    assert (problem.seq, problem.kind) == (10, "truncated")


def test_swap_two_rows(ledger_path: Path, tamper: Tamper) -> None:
    tamper(
        "UPDATE events SET seq = -3 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = 4",
        "UPDATE events SET seq = 4 WHERE seq = -3",
    )
    problem = first(check(ledger_path))
    assert (problem.seq, problem.kind) == (3, "relinked")


def test_insert_row_in_the_middle(ledger_path: Path, tamper: Tamper) -> None:
    """Make room at seq 6 and insert a self-consistent forged row chained to seq 5."""
    conn = sqlite3.connect(ledger_path)
    prev_hash = conn.execute("SELECT hash FROM events WHERE seq = 5").fetchone()[0]
    conn.close()
    content: dict[str, Any] = dict.fromkeys(RECORD_COLUMNS)
    content.update(transfer_fields(99, data_categories='["chat_content"]', redactions="{}"))
    record = json.dumps({KEY_OF.get(column, column): value for column, value in content.items()})
    forged = {"seq": 6, "prev_hash": prev_hash, "chain_version": 3, "record": record}
    forged["hash"] = row_digest(6, prev_hash, 3, record)
    columns = list(forged)
    marks = ", ".join("?" * len(columns))
    tamper(
        "UPDATE events SET seq = seq + 100 WHERE seq >= 6",
        "UPDATE events SET seq = seq - 99 WHERE seq >= 106",
        (
            f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks})",
            [forged[c] for c in columns],
        ),
    )
    problem = first(check(ledger_path))
    assert (problem.seq, problem.kind) == (6, "inserted")


def test_insert_row_at_the_end_with_a_made_up_hash(ledger_path: Path, tamper: Tamper) -> None:
    tamper(
        "INSERT INTO events (seq, prev_hash, hash, chain_version, record) VALUES (11, 'ab', "
        "'cd', 3, json_object('event', 'transfer', 'case_id', 'case-x', 'transferred_at', "
        "'2024-07-01T00:00:00Z'))"
    )
    assert first(check(ledger_path)).seq == 11


def test_rewrite_and_recompute_every_later_hash_is_caught_by_the_checkpoint(
    ledger_path: Path, tamper: Tamper
) -> None:
    point = signed_head(ledger_path)
    tamper(edit(3, legal_basis="art45", mechanism_ref="DPF"))
    rechain_from(ledger_path, 3)
    assert check(ledger_path).ok  # a consistent forgery: only the checkpoint can tell
    problem = first(check(ledger_path, point))
    assert (problem.seq, problem.kind) == (10, "diverged")


def test_checkpoint_stays_valid_after_legitimate_appends(ledger_path: Path) -> None:
    point = signed_head(ledger_path)
    db = open_db(ledger_path)
    append(db, [transfer_fields(11)])
    db.conn.close()
    result = check(ledger_path, point)
    assert result.ok and result.head_seq == 11


def test_rewrite_after_the_checkpoint_seq_is_still_a_chain_break(
    ledger_path: Path, tamper: Tamper
) -> None:
    point = signed_head(ledger_path)
    db = open_db(ledger_path)
    append(db, [transfer_fields(11), transfer_fields(12)])
    db.conn.close()
    tamper(edit(12, origin_country="US"))
    assert first(check(ledger_path, point)).seq == 12


def ledger_key() -> tuple[bytes, str]:
    return KEY, "the ledger key"


def unused() -> tuple[bytes, str]:
    raise AssertionError("a signed (version 2) checkpoint needs no HMAC key")


def test_checkpoint_file_round_trip_and_signature(ledger_path: Path, tmp_path: Path) -> None:
    point = signed_head(ledger_path)
    path = tmp_path / "sub" / "head.json"
    signed.write(path, point)
    data = json.loads(path.read_text())
    assert set(data) == {"version", "kind", "seq", "hash", "created_at", "row_count", "signature"}
    loaded = signed.read(path)
    assert loaded == point
    assert signed.signature_problem(loaded, path, [], ledger_key) is None
    assert not list(path.parent.glob(".head.json.*"))  # no temp file left behind


def test_forged_checkpoint_signature(ledger_path: Path, tmp_path: Path) -> None:
    point = signed_head(ledger_path)
    forged = dataclasses.replace(point, seq=9)
    problem = signed.signature_problem(forged, "head.json", [], ledger_key)
    assert problem is not None and problem.kind == "bad_signature"
    other_key = signed.signature_problem(point, "head.json", [], lambda: (b"other-key", "x"))
    assert other_key is not None


def test_a_signed_checkpoints_verdict_under_the_auditors_public_keys(ledger_path: Path) -> None:
    db = open_db(ledger_path)
    operator, stranger = signed.generate(), signed.generate()
    point = signed.make(db.conn, operator)
    db.conn.close()
    mine, theirs = (Path("op.pub"), operator.public_key()), (Path("x.pub"), stranger.public_key())
    # One key that signed it is enough.
    assert signed.signature_problem(point, "head.json", [theirs, mine], unused) is None
    forged = signed.signature_problem(
        dataclasses.replace(point, seq=9), "head.json", [mine], unused
    )
    assert forged is not None and forged.kind == "bad_signature" and forged.seq == 9
    # Not tampering, a usage error: no key, or only keys that never signed it.
    with pytest.raises(ConfigError, match="give --public-key"):
        signed.signature_problem(point, "head.json", [], unused)
    with pytest.raises(ConfigError, match=r"signed by another key .*x\.pub"):
        signed.signature_problem(point, "head.json", [theirs], unused)


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"version": 2}', '{"version": 1, "seq": "x"}', ""],
)
def test_malformed_checkpoint_file_is_a_usage_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(signed.CheckpointError):
        signed.read(path)


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(signed.CheckpointError, match="does not exist"):
        signed.read(tmp_path / "nope.json")


def test_make_checkpoint_refuses_a_broken_chain(ledger_path: Path, tamper: Tamper) -> None:
    tamper(edit(2, actor="mallory"))
    with pytest.raises(verify.LedgerTampered, match="seq 2"):
        signed_head(ledger_path)


EDITABLE = list(RECORD_COLUMNS)  # every column the record holds


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=st.integers(1, 10), column=st.sampled_from(EDITABLE), value=st.text(max_size=8))
def test_any_single_field_edit_is_detected(
    ledger_path: Path, seq: int, column: str, value: str
) -> None:
    conn = sqlite3.connect(ledger_path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    old = conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    if old == value:
        conn.close()
        return
    record = conn.execute("SELECT record FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    key = KEY_OF.get(column, column)  # recorded_at is the record's transferred_at
    edit = f"UPDATE events SET record = json_set(record, '$.{key}', ?) WHERE seq = ?"
    conn.execute(edit, (value, seq))
    conn.execute(APPEND_ONLY_TRIGGERS[0])  # put back: verify names a missing trigger first
    conn.commit()
    stored = conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    try:
        if stored != old:  # the column's affinity may turn '1005' back into 1005: no edit
            assert first(check(ledger_path)).seq == seq
    finally:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET record = ? WHERE seq = ?", (record, seq))
        conn.execute(APPEND_ONLY_TRIGGERS[0])
        conn.commit()
        conn.close()


def test_parallel_ranges_agree_with_the_single_pass(ledger_path: Path, tamper: Tamper) -> None:
    """Several processes, one seq range each: the same answer as one pass, and any broken
    row sends the check back to the single pass, which names it."""

    db = open_db(ledger_path)
    append(db, (transfer_fields(i) for i in range(11, 41)))
    db.conn.close()
    reader = open_db(ledger_path, read_only=True)
    whole = verify.walk_chain(reader.conn)
    split = verify.verify_chain(reader.conn, parallel_min_rows=2)
    assert (split.ok, split.rows, split.head_seq, split.head_hash) == (
        True,
        40,
        whole.head_seq,
        whole.head_hash,
    )
    reader.conn.close()
    tamper(edit(33, origin_country="US"))
    broken = verify.verify_chain(open_db(ledger_path, read_only=True).conn, parallel_min_rows=2)
    assert (first(broken).seq, first(broken).kind) == (33, "edited")
