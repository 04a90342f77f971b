"""The register of ledger copies (commands.copies): which copies still hold a person."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

from snapzen.commands import copies
from snapzen.commands.copies import backup_registered
from snapzen.support import clock
from snapzen.support.settings import Settings


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


def test_a_copy_made_in_the_same_second_as_the_erasure_may_hold_the_person(
    tmp_path: Path,
) -> None:
    # Stamps carry seconds only: a backup made at 12:00:00.700 and an erasure finished at
    # 12:00:00.200 read the same; the backup may have been taken first, so it is listed. One
    # made in the same second as the person's first record may hold them too.
    ledger = tmp_path / "snapzen.db"
    for name, moment in (
        ("same-second.db", datetime(2026, 11, 8, 12, 0, 0, 700_000, tzinfo=UTC)),
        ("first-second.db", datetime(2026, 11, 2, 9, 0, 0, 100_000, tzinfo=UTC)),
        ("next-second.db", datetime(2026, 11, 8, 12, 0, 1, tzinfo=UTC)),
        ("before-first.db", datetime(2026, 11, 2, 8, 59, 59, 900_000, tzinfo=UTC)),
    ):  # fmt: skip
        (tmp_path / name).write_text("copy")
        copies.register(ledger, copies.BACKUP, tmp_path / name, moment)
    erased = datetime(2026, 11, 8, 12, 0, 0, 200_000, tzinfo=UTC)  # the injected clock
    held = copies.holding(
        copies.recorded(ledger),
        backups_since="2026-11-02T09:00:00.500000+00:00",  # first record, in another form
        journal_since=None,
        before=clock.format(erased),
    )
    assert sorted(Path(c.path).name for c in held) == ["first-second.db", "same-second.db"]


def test_a_backup_counts_as_made_when_its_snapshot_began(settings: Settings) -> None:
    # A backup still being written when an erasure finishes was taken before it: registered
    # at its start, it is named by that erasure's response.
    began = datetime(2026, 11, 8, 11, 59, 58, tzinfo=UTC)
    dest = settings.ledger.path.parent / "backup.db"
    backup_registered(settings, dest, now=began)
    [made] = copies.recorded(settings.ledger.path)
    assert made.made_at == "2026-11-08T11:59:58Z"
    held = copies.holding(
        [made], backups_since="2026-11-01T00:00:00Z", journal_since=None,
        before="2026-11-08T11:59:59Z",
    )  # fmt: skip
    assert held == [made]
