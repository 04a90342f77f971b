"""The erasure journal: Art. 17 erasures kept outside the database, so a restore keeps them.

A backup taken before an erasure knows nothing of it: restored, its pending chats of the
erased person would be sent again, and its ledger would show their tickets as live. So every
erasure also appends one JSON line to a file beside the database (``ledger.erasure_journal``)
and ``snapzen ledger checkpoint`` copies that file next to each checkpoint, off the machine.
After a restore, ``reapply`` brings the restored ledger up to date from the journal:

- ``erased_subjects`` gets the person again, so a chat of theirs that started before the
  erasure is withheld when it is fetched (``outbox.stage``) instead of sent;
- their pending or failed chats in the restored database become withheld;
- every ticket the journal says was deleted gets an ``erased`` event (``reapplied: true``)
  when the restored chain lacks one, so the sweep, access packs and reports see it gone.

Lines carry ids and the subject's HMAC only, never an email; each line has a SHA-256 of its
body so a damaged line is reported rather than half-applied. Re-applying twice is harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.ledger import decisions, outbox
from snapzen.ledger.chain import append_event
from snapzen.ledger.db import transaction
from snapzen.ledger.status import UNSENT, CaseStatus
from snapzen.ledger.transitions import ERASED_REASON

VERSION = 1


@dataclass(frozen=True)
class JournalEntry:
    request_id: str
    subject_ref: str
    erased_at: str  # ISO UTC; chats started up to here are the erased person's past chats
    reason: str
    tickets: list[int] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # withheld (never sent) by the erasure

    def line(self) -> str:
        body = json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(body.encode()).hexdigest()
        return json.dumps({"entry": json.loads(body), "sha256": digest}, sort_keys=True)


def append(path: Path, entry: JournalEntry) -> None:
    """Append one line and fsync it: the erasure is not done until this is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(entry.line() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class JournalDamaged(ValueError):
    """A line whose checksum does not match (edited or truncated)."""


def read(path: Path) -> list[JournalEntry]:
    """Every entry, in order; JournalDamaged names the first bad line. A missing file is an
    empty journal (nobody was erased yet)."""
    if not path.exists():
        return []
    entries: list[JournalEntry] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            wrapper = json.loads(text)
            body = wrapper["entry"]
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
            if hashlib.sha256(canonical.encode()).hexdigest() != wrapper["sha256"]:
                raise JournalDamaged(f"{path}: line {number}: checksum mismatch")
            entries.append(
                JournalEntry(
                    request_id=str(body["request_id"]),
                    subject_ref=str(body["subject_ref"]),
                    erased_at=str(body["erased_at"]),
                    reason=str(body["reason"]),
                    tickets=[int(t) for t in body.get("tickets", [])],
                    cases=[str(c) for c in body.get("cases", [])],
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, JournalDamaged):
                raise
            raise JournalDamaged(f"{path}: line {number}: not a journal entry") from None
    return entries


@dataclass
class ReapplyResult:
    entries: int = 0
    subjects: int = 0  # erased_subjects rows (re)written
    withheld: int = 0  # pending/failed chats withheld again
    events: int = 0  # `erased` events appended for tickets the restored chain lacked
    in_flight: list[str] = field(default_factory=list)  # pushing: erase again after a sync

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def remember_subject(conn: Any, subject_ref: str, erased_at: str, request_id: str) -> None:
    """Inside the caller's transaction: later erasures move ``erased_at`` forward only."""
    conn.execute(
        """INSERT INTO erased_subjects (subject_ref, erased_at, request_id) VALUES (?, ?, ?)
           ON CONFLICT(subject_ref) DO UPDATE SET erased_at = excluded.erased_at,
               request_id = excluded.request_id
           WHERE excluded.erased_at > erased_subjects.erased_at""",
        (subject_ref, erased_at, request_id),
    )


def reapply(
    db: sqlite_utils.Database,
    entries: Iterable[JournalEntry],
    *,
    actor: str = "restore",
    now: datetime | None = None,
) -> ReapplyResult:
    """Bring a (restored) ledger up to date with the erasure journal, in one transaction.

    The caller holds the writer lock (a sync must not stage in between). Called by
    ``snapzen ledger reapply-erasures``; ``ledger restore`` and ``init --adopt`` call it on
    the database they put in place, before any sync runs on it."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = ReapplyResult()
    with transaction(db) as conn:
        for entry in entries:
            result.entries += 1
            remember_subject(conn, entry.subject_ref, entry.erased_at, entry.request_id)
            result.subjects += 1
            withheld = conn.execute(
                """UPDATE cases SET status = ?, reason = ?, raw = NULL,
                       raw_purged_at = ?, updated_at = ?, error = NULL
                   WHERE subject_ref = ? AND status IN (?, ?)
                     AND (started_at IS NULL OR started_at <= ?)
                   RETURNING case_id, subject_ref""",
                (
                    CaseStatus.WITHHELD,
                    ERASED_REASON,
                    stamp,
                    stamp,
                    entry.subject_ref,
                    *UNSENT,
                    entry.erased_at,
                ),
            ).fetchall()
            decisions.record(conn, outbox.erased_withheld(withheld, stamp, actor=actor))  # chained
            result.withheld += len(withheld)
            result.in_flight.extend(
                str(row[0])
                for row in conn.execute(
                    "SELECT case_id FROM cases WHERE subject_ref = ? AND status = ?",
                    (entry.subject_ref, CaseStatus.PUSHING),
                )
            )
            for ticket_id in entry.tickets:
                if _recorded(conn, ticket_id):
                    continue
                case = conn.execute(
                    "SELECT case_id, widget_id FROM cases WHERE ticket_id = ?", (ticket_id,)
                ).fetchone()
                append_event(
                    conn,
                    {
                        "event": "erased",
                        "case_id": str(case[0]) if case else f"ticket:{ticket_id}",
                        "widget_id": case[1] if case else None,
                        "subject_ref": entry.subject_ref,
                        "ticket_id": ticket_id,
                        "transferred_at": stamp,
                        "actor": actor,
                        "details": {
                            "reason": entry.reason,
                            "ticket_deleted": True,
                            "reapplied": True,
                            "erased_at": entry.erased_at,
                            "request_id": entry.request_id,
                        },
                    },
                )
                result.events += 1
    return result


def _recorded(conn: Any, ticket_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM transfers WHERE ticket_id = ? AND event IN ('erased', 'expired') LIMIT 1",
        (ticket_id,),
    ).fetchone()
    return row is not None
