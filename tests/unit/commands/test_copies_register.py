"""The register of ledger copies (commands.copies): which copies still hold a person."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

from snapzen.commands import copies


def test_copies_made_between_the_persons_first_record_and_the_erasure_hold_them(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "snapzen.db"
    made = {}
    for name, kind, day in (
        ("early.db", copies.BACKUP, 1), ("late.db", copies.BACKUP, 5),
        ("after.db", copies.BACKUP, 9), ("gone.db", copies.BACKUP, 6),
        ("j1.jsonl", copies.JOURNAL_COPY, 3), ("j2.jsonl", copies.JOURNAL_COPY, 6),
    ):  # fmt: skip
        path = tmp_path / name
        path.write_text("copy")
        copies.register(ledger, kind, path, datetime(2026, 11, day, 12, tzinfo=UTC))
        made[name] = path
    made["gone.db"].unlink()  # deleted by the operator: holds nobody any more
    register = copies.register_path(ledger)
    assert stat.S_IMODE(register.stat().st_mode) == 0o600
    held = copies.holding(
        copies.recorded(ledger),
        backups_since="2026-11-02T00:00:00Z",  # the person's first chat
        journal_since="2026-11-04T00:00:00Z",  # their first request
        before="2026-11-08T00:00:00Z",  # the erasure
    )
    assert [Path(c.path).name for c in held] == ["late.db", "j2.jsonl"]
    nobody = copies.holding(copies.recorded(ledger), backups_since=None, journal_since=None,
                            before="2026-11-08T00:00:00Z")  # fmt: skip
    assert nobody == []
