"""Opening the ledger: created only on purpose, 0600, bound to its key and schema version, and
one line with the path and the fix for every way the file can be unusable."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapzen.ledger.store.db import LedgerError, create_ledger, open_db, transaction
from snapzen.ledger.store.identity import key_fingerprint, read_meta
from snapzen.ledger.store.schema import SCHEMA_VERSION

KEY = b"unit-ledger-key-0123456789abcdef"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_ledger_and_its_wal_and_shm_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)  # the most permissive umask: the modes must come from the code
    try:
        path = tmp_path / "new" / "snapzen.db"
        db = create_ledger(path, KEY, NOW)
        with transaction(db) as conn:  # a write, so the -wal and -shm files exist
            conn.execute("INSERT INTO state VALUES ('w', NULL, 'x')")
        for name in ("snapzen.db", "snapzen.db-wal", "snapzen.db-shm"):
            assert (tmp_path / "new" / name).exists(), name
            assert _mode(tmp_path / "new" / name) == 0o600, name
        assert _mode(path.parent) == 0o700
        db.conn.close()
    finally:
        os.umask(old)


def test_init_stores_id_creation_time_and_a_fingerprint_never_the_key(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    create_ledger(path, KEY, NOW).conn.close()
    meta = read_meta(open_db(path).conn)
    assert meta["created_at"].startswith("2026-12-01T12:00")
    assert meta["key_fingerprint"] == key_fingerprint(KEY, meta["ledger_id"])
    assert KEY not in path.read_bytes()
    with pytest.raises(LedgerError, match="already exists"):
        create_ledger(path, KEY, NOW)


def test_fingerprints_differ_between_ledgers_with_one_key(tmp_path: Path) -> None:
    create_ledger(tmp_path / "a.db", KEY, NOW).conn.close()
    create_ledger(tmp_path / "b.db", KEY, NOW).conn.close()
    a = read_meta(open_db(tmp_path / "a.db").conn)["key_fingerprint"]
    b = read_meta(open_db(tmp_path / "b.db").conn)["key_fingerprint"]
    assert a != b


def test_another_key_is_refused_read_and_write_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    create_ledger(path, KEY, NOW).conn.close()
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(LedgerError, match=r"different ledger\.key") as info:
            open_db(path, key=b"another-key", read_only=read_only)
        assert str(path) in str(info.value)
    assert path.read_bytes() == before
    open_db(path, key=KEY).conn.close()  # the right key opens it


def test_a_ledger_made_before_binding_is_bound_by_restore_never_by_an_open(
    tmp_path: Path,
) -> None:
    from snapzen.commands.init import check_copy

    path = tmp_path / "old.db"
    db = open_db(path, create=True)  # as the old code did: no identity yet
    db.execute("DELETE FROM ledger_meta")
    db.conn.commit()
    db.conn.close()
    for read_only in (True, False):  # neither a read nor a writing open binds it
        open_db(path, key=KEY, read_only=read_only).conn.close()
        assert "key_fingerprint" not in read_meta(open_db(path, read_only=True).conn)
    check_copy(path, path, KEY, NOW)  # what `ledger restore` does to the copy it puts in place
    with pytest.raises(LedgerError, match=r"different ledger\.key"):
        open_db(path, key=b"other")
    assert read_meta(open_db(path).conn)["bound_by"] == "restore"


def test_restore_refuses_a_backup_whose_append_only_trigger_was_dropped(
    tmp_path: Path,
) -> None:
    from snapzen.commands.init import check_copy

    path = tmp_path / "backup.db"
    create_ledger(path, KEY, NOW).conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
    with pytest.raises(LedgerError, match=r"does not verify.*trigger events_no_update missing"):
        check_copy(path, path, KEY, NOW)  # what `ledger restore` checks before the swap


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    create_ledger(path, KEY, NOW).conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for read_only in (False, True):
        with pytest.raises(LedgerError, match="newer than this snapzen"):
            open_db(path, key=KEY, read_only=read_only)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def _one_line(exc: pytest.ExceptionInfo[LedgerError], path: Path, fix: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith("ledger.path: ")
    assert str(path) in text and fix in text, text


def test_missing_is_refused_and_nothing_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "snapzen.db"
    with pytest.raises(LedgerError) as info:
        open_db(path)
    _one_line(info, path, "snapzen init")
    assert not path.parent.exists()


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as info:
        open_db(tmp_path)
    _one_line(info, tmp_path, "set ledger.path to a file")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not sqlite at all " * 200)
    with pytest.raises(LedgerError) as info:
        open_db(path)
    _one_line(info, path, "snapzen ledger restore")


def test_empty_file_is_not_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(LedgerError) as info:
        open_db(path)
    _one_line(info, path, "snapzen init")
    assert path.stat().st_size == 0


def test_locked(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    create_ledger(path, KEY, NOW).conn.close()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerError) as info:
            open_db(path, timeout=0.1)
        _one_line(info, path, "wait for it to end")
    finally:
        holder.rollback()
        holder.close()


_AS_NOBODY = """
import os, sys
from snapzen.ledger.store.db import LedgerError, open_db  # imported as root: /root is 0700
os.setgid(65534); os.setuid(65534)
try:
    open_db(sys.argv[1], read_only=sys.argv[2] == "ro")
except LedgerError as exc:
    print(exc)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
@pytest.mark.parametrize(
    ("file_mode", "read_only", "fix"),
    [(0o000, True, "permission denied"), (0o644, False, "read-only")],
)
def test_unreadable_and_read_only_as_another_user(
    file_mode: int, read_only: bool, fix: str
) -> None:
    # Root reads and writes any file, so the case is played by user nobody (65534).
    top = Path(tempfile.mkdtemp(prefix="snapzen-perm-", dir="/tmp"))
    try:
        top.chmod(0o755)
        path = top / "l.db"
        create_ledger(path, KEY, NOW).conn.close()
        path.chmod(file_mode)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, "-c", _AS_NOBODY, str(path), "ro" if read_only else "rw"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        line = done.stdout.strip()
        assert line.startswith("ledger.path: ") and str(path) in line and fix in line, (
            line,
            done.stderr,
        )
    finally:
        shutil.rmtree(top)
