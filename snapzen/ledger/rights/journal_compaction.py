"""Compacting the rights journal once a request period is forgotten (issue 27, item 4).

A request or erasure line of the rights journal carries the person's lookup reference (the
HMAC of their email under the ledger key), which a restore needs to chain the request again.
Once the request period holding that request is forgotten (snapzen.ledger.rights.forget),
nothing may bring it back, so the journal must not keep the reference either: ``compact``
rewrites the journal without the ``request`` and ``erasure`` lines of the forgotten requests
(through ``journal_file.write_copy``: atomically, 0600, a fresh keyed chain), keeping every
other line, the ``period_forgotten`` lines included (so a restore of an older backup still
forgets the period again), and ends it with a ``compacted`` line: when, how many lines were
removed, and the head (line count, last MAC) of the journal it replaced. That head is the
``period_forgotten`` line the sweep wrote just before (no reference), and it lets
``ledger verify --checkpoint`` accept a checkpoint signed before the compaction
(``superseded``): the journal it signed was rewritten by the sweep, and the rewrite is itself
a keyed line nobody without the ledger key can forge.

Only request ids that both the journal (a ``period_forgotten`` line) and the ledger's chain (its
``period_forgotten`` event) record as forgotten are removed: the sweep's order is journal line,
ledger transaction, then this compaction, so a kill at any step is finished by the next sweep.
Checkpoint copies of the journal made before keep the lines until they are deleted.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from snapzen.ledger.rights import journal_file
from snapzen.support import clock

COMPACTED = "compacted"
_REMOVABLE = ("erasure", "request")


def _removed(line: journal_file.Line, gone: Collection[str]) -> bool:
    return line.type in _REMOVABLE and str(line.entry.get("request_id")) in gone


def compact(path: Path, key: bytes, gone: Collection[str], now: datetime) -> int:
    """Rewrite the journal without the request and erasure lines of the requests ``gone``
    (their request period forgotten); returns how many lines were removed (0: untouched).
    A damaged journal is refused (JournalDamaged) before anything is written; an old-format
    journal is left alone (it is migrated, vouched for, before the sweep forgets)."""
    if not gone or not path.is_file():
        return 0
    lines = journal_file.read(path, key, accept_old=lambda _body: True)
    if any(line.old for line in lines):
        return 0
    kept = [line for line in lines if not _removed(line, gone)]
    removed = len(lines) - len(kept)
    if not removed:
        return 0
    count, head = journal_file.head(lines)
    entry: dict[str, Any] = {
        "at": clock.format(now),
        "from_lines": count,
        "from_head": head,
        "lines_removed": removed,
    }
    journal_file.write_copy(path, [*kept, journal_file.Line(0, COMPACTED, entry, "")], key)
    return removed


def superseded(lines: Collection[journal_file.Line], signed_lines: int) -> dict[str, Any] | None:
    """The ``compacted`` line that rewrote the journal after a checkpoint signed its first
    ``signed_lines`` lines (the journal it replaced had at least that many), or None."""
    for line in lines:
        if line.type == COMPACTED and int(line.entry.get("from_lines", 0)) >= signed_lines:
            return line.entry
    return None
