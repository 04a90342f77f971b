"""The restore's file swap (commands.restore_swap) on real SQLite files: the old WAL never
reaches the new file, a reader that keeps the WAL from being emptied stops the swap before
anything moves, and a damaged old ledger is kept aside with its WAL. (Kills at each step
with the real CLI: tests/e2e/test_restore_crash.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from snapzen.commands.restore_swap import make_standalone, swap_in
from snapzen.ledger.store.db import LedgerError


def _db(path: Path, rows: list[str], *, keep_wal: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the -wal file
    conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
    conn.commit()
    if not keep_wal:
        conn.close()
    return conn


def _rows(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]


def test_the_old_wal_is_folded_into_the_replaced_file_never_onto_the_new_one(
    tmp_path: Path,
) -> None:
    live, new = tmp_path / "l.db", tmp_path / "l.db.restoring"
    writer = _db(live, ["old-1", "old-2"], keep_wal=True)
    assert Path(f"{live}-wal").stat().st_size > 0
    _db(new, ["new"])
    make_standalone(new)
    assert not Path(f"{new}-wal").exists()
    aside = tmp_path / "l.db.replaced-x"
    assert swap_in(new, live, aside) == aside
    writer.close()
    assert _rows(live) == ["new"]
    assert _rows(aside) == ["old-1", "old-2"]
    assert not new.exists()


def test_a_reader_holding_the_wal_stops_the_swap_before_anything_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The swap's checkpoint waits SQLite's busy timeout (5 s) for the reader, which never
    # lets go here: a tenth of a second says the same.
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **{**k, "timeout": 0.1}))
    live, new = tmp_path / "l.db", tmp_path / "l.db.restoring"
    _db(live, ["old"])
    writer = _db(live, ["later"], keep_wal=True)
    reader = sqlite3.connect(str(live))
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM t").fetchone()  # a read snapshot pins the WAL
    _db(new, ["new"])
    make_standalone(new)
    with pytest.raises(LedgerError, match="another process is reading"):
        swap_in(new, live, tmp_path / "l.db.replaced-x")
    reader.close()
    writer.close()
    assert _rows(live) == ["later", "old"] and new.exists()
    assert not list(tmp_path.glob("l.db.replaced-x*"))


def test_an_existing_replaced_file_is_never_overwritten(tmp_path: Path) -> None:
    live, new = tmp_path / "l.db", tmp_path / "l.db.restoring"
    _db(live, ["old"])
    _db(new, ["new"])
    make_standalone(new)
    taken = tmp_path / "l.db.replaced-x"
    taken.write_bytes(b"an earlier replaced ledger")
    with pytest.raises(LedgerError, match="never overwritten"):
        swap_in(new, live, taken)
    assert taken.read_bytes() == b"an earlier replaced ledger" and _rows(live) == ["old"]


def test_a_damaged_old_ledger_is_kept_aside_with_its_wal(tmp_path: Path) -> None:
    live, new = tmp_path / "l.db", tmp_path / "l.db.restoring"
    live.write_bytes(b"garbage, not SQLite" * 500)
    Path(f"{live}-wal").write_bytes(b"a log SQLite cannot read" * 10)
    _db(new, ["new"])
    make_standalone(new)
    aside = swap_in(new, live, tmp_path / "l.db.replaced-x")
    assert aside is not None
    assert Path(f"{aside}-wal").read_bytes() == b"a log SQLite cannot read" * 10
    assert not Path(f"{live}-wal").exists() and _rows(live) == ["new"]
