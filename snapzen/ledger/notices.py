"""Art. 19 record: each recipient told (or still to be told) of an erasure, chained.

Art. 19 GDPR: the controller communicates an erasure to each recipient to whom the personal
data were disclosed, and tells the person about those recipients if they ask. One
``recipient_notice`` event per recipient and erasure run: ``recipient`` names it, ``case_id``
carries the request id (as ``request`` events do), ``details`` says how it was told:

- ``notified``: snapzen itself deleted the data there (Zendesk: the deletion is the notice);
- ``to_notify``: snapzen cannot delete there (SnapEngage has no deletion API): the operator
  must ask, and ``due_on`` is the day the notice was recorded as owed.

Only ids, dates and recipient names: no email, no name.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snapzen.ledger.chain import append_event
from snapzen.ledger.events import Event

EVENT = Event.RECIPIENT_NOTICE
NOTIFIED = "notified"
TO_NOTIFY = "to_notify"
STATUSES = (NOTIFIED, TO_NOTIFY)


@dataclass(frozen=True)
class Notice:
    recipient: str  # e.g. "Zendesk", "SnapEngage"
    status: str  # notified | to_notify
    on: str  # YYYY-MM-DD: when told (notified) or when the notice became owed (to_notify)
    how: str  # one plain line: what was done or what the operator must do
    seq: int | None = None  # the ledger row, once recorded


def record(
    conn: sqlite3.Connection,
    notices: list[Notice],
    *,
    request_id: str,
    subject_ref: str,
    actor: str,
    now: datetime,
) -> list[Notice]:
    """Append one event per notice inside the caller's transaction; returns them with seq."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stored: list[Notice] = []
    for notice in notices:
        if notice.status not in STATUSES:
            raise ValueError(f"notice status must be one of {STATUSES}")
        details: dict[str, Any] = {"status": notice.status, "on": notice.on, "how": notice.how}
        row = append_event(
            conn,
            {
                "event": EVENT,
                "case_id": request_id,
                "subject_ref": subject_ref,
                "recipient": notice.recipient,
                "recorded_at": stamp,  # the event time; the column is NOT NULL
                "actor": actor,
                "details": details,
            },
        )
        stored.append(Notice(notice.recipient, notice.status, notice.on, notice.how, row["seq"]))
    return stored


def for_subject(conn: sqlite3.Connection, subject_ref: str) -> list[Notice]:
    """Every notice recorded for this subject, oldest first."""
    rows = conn.execute(
        "SELECT seq, recipient, details FROM events WHERE event = ? AND subject_ref = ? "
        "ORDER BY seq",
        (EVENT, subject_ref),
    ).fetchall()
    found = []
    for seq, recipient, raw in rows:
        details = json.loads(raw) if raw else {}
        found.append(
            Notice(
                str(recipient),
                str(details.get("status")),
                str(details.get("on")),
                str(details.get("how", "")),
                int(seq),
            )
        )
    return found
