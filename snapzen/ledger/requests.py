"""The data-subject request journal: access, erasure, withdrawal and objection requests.

Each request is a chain of ``request`` events sharing one request id (in ``case_id``): the
first carries the date received and the Art. 12(3) deadline (one month later), later ones a
new outcome. The chain holds them, so "we answered on time" and "we found nothing for this
person" can both be shown, and neither can be edited afterwards; each event is also a line of
the rights journal outside the database (snapzen.ledger.erasure_journal), so a restored
backup gets back the requests made after it (re-appended with ``reapplied: true``).

Only the subject's HMAC reference is stored, never the email. ``details`` holds the kind,
dates, status (``open`` until answered) and outcome counts.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from snapzen.ledger.chain import append_event

EVENT = "request"
KINDS = ("access", "erasure", "withdrawal", "objection")
ERASURE_KINDS = ("erasure", "withdrawal", "objection")  # answered by `ledger erase`
# `ledger erase --reason` → the kind of request it answers (Art. 17(1)(a), 7(3), 21).
REASON_KINDS = {"art17": "erasure", "consent_withdrawn": "withdrawal", "objection": "objection"}
OPEN, CLOSED = "open", "closed"


def add_month(day: date) -> date:
    """The same day one month later, clamped to the month's end (31 Jan → 28/29 Feb)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def deadline(received: date) -> date:
    """Art. 12(3): "without undue delay and in any event within one month of receipt"."""
    return add_month(received)


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


@dataclass
class Request:
    request_id: str
    kind: str
    subject_ref: str | None
    received_on: str
    deadline: str
    status: str
    outcome: str
    updated_at: str
    seqs: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def overdue(self, today: date) -> bool:
        return self.status == OPEN and date.fromisoformat(self.deadline) < today

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "subject_ref": self.subject_ref,
            "received_on": self.received_on,
            "deadline": self.deadline,
            "status": self.status,
            "outcome": self.outcome,
            "updated_at": self.updated_at,
            "seqs": self.seqs,
            "details": self.details,
        }


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    kind: str,
    subject_ref: str | None,
    received_on: date,
    status: str,
    outcome: str,
    actor: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one ``request`` event inside the caller's transaction; returns the row."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; one of {KINDS}")
    if status not in (OPEN, CLOSED):
        raise ValueError(f"status must be {OPEN!r} or {CLOSED!r}")
    body: dict[str, Any] = {
        "kind": kind,
        "received_on": received_on.isoformat(),
        "deadline": deadline(received_on).isoformat(),
        "status": status,
        "outcome": outcome,
    }
    body.update(details or {})
    return append_event(
        conn,
        {
            "event": EVENT,
            "case_id": request_id,
            "subject_ref": subject_ref,
            "transferred_at": _stamp(now),  # the event time; the column is NOT NULL
            "actor": actor,
            "details": body,
        },
    )


def list_requests(conn: sqlite3.Connection, subject_ref: str | None = None) -> list[Request]:
    """Every request, the latest event deciding status and outcome; open ones first (by
    deadline), then closed ones, most recent first."""
    sql = "SELECT seq, case_id, subject_ref, transferred_at, details FROM transfers WHERE event = ?"
    params: list[Any] = [EVENT]
    if subject_ref is not None:
        sql += " AND subject_ref = ?"
        params.append(subject_ref)
    found: dict[str, Request] = {}
    for seq, request_id, ref, at, text in conn.execute(sql + " ORDER BY seq", params):
        details = orjson.loads(text) if text else {}
        current = found.get(request_id)
        if current is None:
            current = found[request_id] = Request(
                request_id=str(request_id),
                kind=str(details.get("kind")),
                subject_ref=ref,
                received_on=str(details.get("received_on")),
                deadline=str(details.get("deadline")),
                status=OPEN,
                outcome="",
                updated_at=str(at),
            )
        current.status = str(details.get("status", current.status))
        current.outcome = str(details.get("outcome", current.outcome))
        current.updated_at = str(at)
        current.seqs.append(int(seq))
        current.details = {
            k: v
            for k, v in details.items()
            if k not in ("kind", "received_on", "deadline", "status", "outcome")
        }
    open_ = sorted((r for r in found.values() if r.status == OPEN), key=lambda r: r.deadline)
    closed = sorted(
        (r for r in found.values() if r.status != OPEN), key=lambda r: r.updated_at, reverse=True
    )
    return open_ + closed
