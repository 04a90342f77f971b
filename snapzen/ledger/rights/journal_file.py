"""The keyed, chained line format of the rights journal (erasures and requests).

Each line is one JSON object::

    {"v": 2, "n": <line number>, "type": "erasure" | "request" | ..., "entry": {...},
     "prev": <the previous line's mac, or GENESIS>, "mac": <hex HMAC-SHA256>}

``mac`` is an HMAC under a sub-key of the ledger key (``journal_key``) over the canonical
JSON of every other field, so nobody without the key can forge a line, and each line names
the previous line's mac, so a deleted, reordered or inserted line breaks the chain at the
line after it. The reader refuses the whole file at the first bad line, naming it: a journal
that was edited is never half-applied.

Version-1 lines (an unkeyed SHA-256 of each line, no chain) are read only when the caller
vouches for them (``vouched``: the ledger's own erasures say the same), and
``migrate`` rewrites them in this format under the key, once.

The sub-key depends on the ledger key only (not on one ledger file), so the journal of a
lost ledger still verifies under the ledger created or restored to replace it.

Compaction (issue 27, item 4): a request or erasure line carries the person's lookup
reference (the HMAC of their email under the ledger key), which a restore needs to chain the
request again. Once the request period holding that request is forgotten
(snapzen.ledger.rights.forget), nothing may bring it back, so the journal must not keep the
reference either: ``compact`` rewrites the journal without the ``request`` and ``erasure``
lines of the forgotten requests (``write_copy``: atomically, 0600, a fresh keyed chain),
keeping every other line, the ``period_forgotten`` lines included (so a restore of an older
backup still forgets the period again), and ends it with a ``compacted`` line: when, how many
lines were removed, and the head (line count, last MAC) of the journal it replaced. That head
lets ``ledger verify --checkpoint`` accept a checkpoint signed before the compaction
(``superseded``): the journal it signed was rewritten by the sweep, and the rewrite is itself
a keyed line nobody without the ledger key can forge. Only request ids that both the journal
(a ``period_forgotten`` line) and the ledger's chain record as forgotten are removed: the
sweep's order is journal line, ledger transaction, then this compaction, so a kill at any
step is finished by the next sweep. Checkpoint copies made before keep the lines until they
are deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from snapzen.support import clock
from snapzen.support.atomic import append_synced, atomic_text
from snapzen.support.errors import ConfigError

VERSION = 2
GENESIS = "0" * 64
_LABEL = b"snapzen rights journal v2\x00"
COMPACTED = "compacted"
# The (request id, subject ref) of the version-1 lines a caller vouches for; None: any.
Vouched = Container[tuple[str, str]] | None


class JournalDamaged(ConfigError):
    """A line that is not what the journal wrote (edited, forged, deleted, reordered or
    truncated): exit 2, naming the line; nothing is applied."""


@dataclass(frozen=True)
class Line:
    number: int
    type: str
    entry: dict[str, Any]
    mac: str  # for a version-1 line: its SHA-256 (it had no mac)
    old: bool = False  # a version-1 line, accepted because the caller vouched for it


def journal_key(ledger_key: bytes) -> bytes:
    """The journal's own key, derived from the ledger key (never the ledger key itself)."""
    return hmac.new(ledger_key, _LABEL, hashlib.sha256).digest()


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    """The HMAC of the canonical JSON of ``body`` under the journal's key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(journal_key(key), canonical.encode(), hashlib.sha256).hexdigest()


def render(
    key: bytes, lines: Iterable[tuple[str, Mapping[str, Any]]], after: int, prev: str
) -> str:
    """``lines`` (type, entry) as keyed journal lines chained on after line ``after``, whose
    mac is ``prev``."""
    texts = []
    for number, (kind, entry) in enumerate(lines, start=after + 1):
        body = {"v": VERSION, "n": number, "type": kind, "entry": dict(entry), "prev": prev}
        prev = _mac(key, body)
        texts.append(json.dumps({**body, "mac": prev}, sort_keys=True, ensure_ascii=False) + "\n")
    return "".join(texts)


def _is_old(data: dict[str, Any]) -> bool:
    return "sha256" in data and "mac" not in data


def read(path: Path, key: bytes | None, *, vouched: Vouched = ()) -> list[Line]:
    """Every line, in order; JournalDamaged names the first bad one. A missing file is an
    empty journal (the callers that must not take that for "nobody was erased" check).

    Without ``key`` only the chain links are checked (an auditor without the ledger key sees
    deletions and reordering, not forgeries). Version-1 lines are accepted only when
    ``vouched`` holds their (request id, subject ref); ``None``: any (read, never rewritten
    from)."""
    if not path.exists():
        return []
    parsed = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            what = "not a journal line" if text.strip() else "empty line (edited journal)"
            raise JournalDamaged(f"{path}: line {number}: {what}")
        parsed.append((number, data))
    keyed = not all(_is_old(data) for _, data in parsed)
    lines: list[Line] = []
    for number, data in parsed:
        if not _is_old(data):
            lines.append(_check(path, number, data, lines[-1].mac if lines else GENESIS, key))
        elif keyed:
            raise JournalDamaged(
                f"{path}: line {number}: an old-format (unkeyed) line in a keyed journal: "
                "forged or edited"
            )
        else:
            lines.append(_old_line(path, number, data, vouched))
    return lines


def _check(path: Path, number: int, data: dict[str, Any], prev: str, key: bytes | None) -> Line:
    fields = {"v", "n", "type", "entry", "prev", "mac"}
    if set(data) != fields or data["v"] != VERSION or not isinstance(data["entry"], dict):
        raise JournalDamaged(f"{path}: line {number}: not a journal line (fields)")
    body = {name: data[name] for name in fields - {"mac"}}
    if data["prev"] != prev or data["n"] != number:
        raise JournalDamaged(
            f"{path}: line {number}: breaks the chain (a line before it was deleted, "
            "reordered or inserted)"
        )
    if key is not None and not hmac.compare_digest(_mac(key, body), str(data["mac"])):
        raise JournalDamaged(
            f"{path}: line {number}: its MAC does not verify under the ledger key "
            "(forged or edited line, or a journal of another key)"
        )
    return Line(number, str(data["type"]), dict(data["entry"]), str(data["mac"]))


def _old_line(path: Path, number: int, data: dict[str, Any], vouched: Vouched) -> Line:
    body = data.get("entry")
    if not isinstance(body, dict):
        raise JournalDamaged(f"{path}: line {number}: not a journal line")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    if hashlib.sha256(canonical.encode()).hexdigest() != data.get("sha256"):
        raise JournalDamaged(f"{path}: line {number}: checksum mismatch")
    if (
        vouched is not None
        and (str(body.get("request_id")), str(body.get("subject_ref"))) not in vouched
    ):
        raise JournalDamaged(
            f"{path}: line {number}: an old-format (unkeyed) line the ledger's own erasures "
            "do not confirm: it could be forged; restore the journal from a checkpoint copy, "
            "or run `snapzen ledger reapply-erasures` on the ledger that wrote it to migrate it"
        )
    return Line(number, "erasure", dict(body), str(data["sha256"]), old=True)


def head(lines: Sequence[Line]) -> tuple[int, str]:
    """(number of keyed lines, the last one's mac); (0, GENESIS) for none (old lines only:
    a journal never mixes the two)."""
    return (lines[-1].number, lines[-1].mac) if lines and not lines[-1].old else (0, GENESIS)


def append(path: Path, key: bytes, todo: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """Append (type, entry) lines and fsync them (created 0600); returns the last line's
    number.

    The caller holds the writer lock, so two appends never interleave. An old-format journal
    is refused here (JournalDamaged): ``migrate`` it first."""
    lines, todo = read(path, key, vouched=None), list(todo)
    if lines and lines[-1].old:
        raise JournalDamaged(f"{path}: old-format lines: migrate the journal first")
    if todo:  # an older journal made 0644 becomes private too
        append_synced(path, render(key, todo, len(lines), head(lines)[1]))
    return len(lines) + len(todo)


def migrate(path: Path, key: bytes, vouched: Vouched) -> int:
    """Rewrite a journal holding version-1 lines in this format (atomically, 0600); only the
    old lines ``vouched`` for are kept (any other refuses the whole file).
    Returns how many lines were migrated (0: nothing to do)."""
    lines = read(path, key, vouched=vouched)
    if not lines or not lines[-1].old:
        return 0
    write_copy(path, lines, key)
    return len(lines)


def write_copy(path: Path, lines: Iterable[Line], key: bytes) -> None:
    """Write ``lines`` (already verified) as a new journal at ``path`` (atomically, 0600)."""
    with atomic_text(path) as handle:
        handle.write(render(key, [(line.type, line.entry) for line in lines], 0, GENESIS))


def create_empty(path: Path) -> None:
    """An empty journal (0600) where none exists: "nobody erased yet" stated, not assumed."""
    append_synced(path, "")


def compact(
    path: Path, key: bytes, lines: Sequence[Line], gone: Collection[str], now: datetime
) -> int:
    """Rewrite the journal at ``path``, whose ``lines`` the caller read (``read``: a damaged
    journal is refused before anything is written), without the request and erasure lines of
    the requests ``gone`` (their request period forgotten); returns how many lines were
    removed (0: untouched). An old-format journal is left alone (it is migrated, vouched for,
    before the sweep forgets)."""
    kept = [
        line
        for line in lines
        if line.type not in ("erasure", "request") or str(line.entry.get("request_id")) not in gone
    ]
    removed = len(lines) - len(kept)
    if not removed or lines[-1].old:
        return 0
    count, last = head(lines)
    entry = {"at": clock.format(now), "from_lines": count, "from_head": last}
    write_copy(path, [*kept, Line(0, COMPACTED, {**entry, "lines_removed": removed}, "")], key)
    return removed


def superseded(lines: Collection[Line], signed_lines: int) -> dict[str, Any] | None:
    """The ``compacted`` line that rewrote the journal after a checkpoint signed its first
    ``signed_lines`` lines (the journal it replaced had at least that many), or None."""
    for line in lines:
        if line.type == COMPACTED and int(line.entry.get("from_lines", 0)) >= signed_lines:
            return line.entry
    return None
