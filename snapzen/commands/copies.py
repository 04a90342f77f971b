"""The copies snapzen makes of the ledger: `snapzen ledger backup FILE`, and the register of
each backup and each erasure journal copy `ledger checkpoint` writes, with its path and when
it was made.

A backup is made with SQLite's online backup API, which copies page by page under SQLite's
own locking, so it is safe while a sync writes (WAL mode) and never yields a torn file, unlike
`cp`. The copy is then opened on its own and must hold as many ledger rows as the source did
when copied.

A copy made after a person's first record and before their erasure still holds them (a
backup: their chats' rows and reference; a journal copy: their earlier requests), and the
erasure cannot reach it. So the erasure response names each such copy, by path and date,
and says until when it stays (snapzen does not delete copies: until the operator does; one
no longer at its path is not listed). The register is a file beside the ledger
(``<ledger>.copies.jsonl``, 0600, one JSON line per copy): outside the database, so a restore
keeps it. Paths and times only: no personal data.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from snapzen.ledger.store.files import checked_rows, copy_database
from snapzen.support import clock
from snapzen.support.atomic import append_synced, private_dir
from snapzen.support.errors import ConfigError, FatalError
from snapzen.support.settings import Settings

BACKUP = "backup"
JOURNAL_COPY = "checkpoint journal copy"


@dataclass(frozen=True)
class Copy:
    kind: str  # backup | checkpoint journal copy
    path: str
    made_at: str  # YYYY-MM-DDTHH:MM:SSZ: when its content was taken (a backup: as it began)


def register_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".copies.jsonl")


def register(ledger: Path, kind: str, path: Path, now: datetime) -> None:
    """Append one copy to the register (created 0600)."""
    line = json.dumps(
        {
            "kind": kind,
            "path": str(path.resolve()),
            "made_at": clock.format(now),
        }
    )
    append_synced(register_path(ledger), line + "\n")


def recorded(ledger: Path) -> list[Copy]:
    """Every copy in the register, oldest first; a line that does not parse is skipped."""
    path = register_path(ledger)
    if not path.is_file():
        return []
    found = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            body = json.loads(text)
            found.append(Copy(str(body["kind"]), str(body["path"]), str(body["made_at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def holding(
    copies: list[Copy], *, backups_since: str | None, journal_since: str | None, before: str
) -> list[Copy]:
    """The copies still at their path that may hold the person: backups made since their
    first record (``backups_since``), journal copies since their first request
    (``journal_since``), both no later than ``before`` (the erasure, once finished).

    Times are compared as instants to the second (snapzen's stamps carry no more): a copy
    made in the same second as the person's first record or as the erasure may hold them, so
    it is listed: naming a copy that holds nobody costs a sentence, leaving out one that
    holds them breaks the promise of the response."""
    kept = []
    until = clock.parse_second(before)
    for copy in copies:
        since = backups_since if copy.kind == BACKUP else journal_since
        if (
            since is None
            or not clock.parse_second(since) <= clock.parse_second(copy.made_at) <= until
        ):
            continue
        if Path(copy.path).exists():
            kept.append(copy)
    return kept


# ---------------------------------------------------------------- `ledger backup`


@dataclass(frozen=True)
class BackupResult:
    path: Path
    transfers: int
    bytes: int


def backup_ledger(source: Path, dest: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy ``source`` to ``dest`` with the online backup API, then verify the copy."""
    if not source.exists():
        raise ConfigError(f"ledger database {source} does not exist")
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest} already exists (use --overwrite to replace it)")
    if dest.resolve() == source.resolve():
        raise ConfigError("the backup file must not be the ledger database itself")
    private_dir(dest.parent)
    # Copy into a temporary name and rename at the end: a crash never leaves a half backup
    # under the name a restore script would pick up.
    partial = dest.with_name(dest.name + ".partial")
    try:
        expected = copy_database(source, partial, count=True)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise FatalError(f"backup of {source} failed: {exc}") from exc
    got = checked_rows(partial)
    if got is None or got != expected:
        partial.unlink(missing_ok=True)
        raise FatalError(
            f"backup verification failed: copy has {got} ledger rows, source {expected}"
        )
    partial.replace(dest)
    return BackupResult(path=dest, transfers=got, bytes=dest.stat().st_size)


def backup_registered(
    settings: Settings, dest: Path, *, overwrite: bool = False, now: datetime | None = None
) -> BackupResult:
    """`snapzen ledger backup`: the copy, registered so an erasure response names the copies
    that still hold the person (``holding``). It is registered as made when it
    began (``now``, injected in tests): its snapshot is taken then, so a backup still being
    written while an erasure finishes holds the person and must count as made before it."""
    began = now or clock.now()
    done = backup_ledger(settings.ledger.path, dest, overwrite=overwrite)
    register(settings.ledger.path, BACKUP, done.path, began)
    return done
