"""Art. 19 record: each recipient told (or still to be told) of an erasure, chained.

Art. 19 GDPR: the controller communicates an erasure to each recipient to whom the personal
data were disclosed, and tells the person about those recipients if they ask. One
``recipient_notice`` event per recipient and erasure run: ``recipient`` names it, ``case_id``
carries the request id (as ``request`` events do), ``details`` says how it was told:

- ``notified``: snapzen itself deleted the data there (Zendesk: the deletion is the notice);
- ``to_notify``: snapzen cannot delete there (SnapEngage has no deletion API; a recipient of
  kind other is never sent to by snapzen): the operator must tell them, and ``on`` is the day
  the notice was recorded as owed. It stays open until ``done`` records, in a later
  ``notified`` event that ``closes`` its ``notice_id``, the day the operator told them.

Only ids, dates and recipient names: no email, no name.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, replace
from typing import Any

from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import period_keys
from snapzen.ledger.rights.requests import Recorder

EVENT = Event.RECIPIENT_NOTICE
NOTIFIED = "notified"
TO_NOTIFY = "to_notify"


@dataclass(frozen=True)
class Notice:
    recipient: str  # e.g. "Zendesk", "SnapEngage"
    status: str  # notified | to_notify
    on: str  # YYYY-MM-DD: when told (notified) or when the notice became owed (to_notify)
    how: str  # one plain line: what was done or what the operator must do
    seq: int | None = None  # the ledger row, once recorded
    notice_id: str = ""  # ntc-…: stable across a restore (the seq is not)
    request_id: str = ""
    closes: str | None = None  # a `done` event: the notice_id it records as told


def record(
    recorder: Recorder, notices: list[Notice], *, request_id: str, subject_ref: str | None
) -> list[Notice]:
    """Chain one event per notice (in the recorder's transaction, journalled with it);
    returns them with seq."""
    stored: list[Notice] = []
    for notice in notices:
        notice_id = notice.notice_id or f"ntc-{uuid.uuid4().hex[:12]}"
        details: dict[str, Any] = {
            "status": notice.status,
            "on": notice.on,
            "how": notice.how,
            "notice_id": notice_id,
        }
        if notice.closes is not None:
            details["closes"] = notice.closes
        row = recorder.append(EVENT, request_id, subject_ref, details, recipient=notice.recipient)
        stored.append(replace(notice, seq=row["seq"], notice_id=notice_id, request_id=request_id))
    return stored


def _read(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[Notice]:
    """The notices of the rows ``where`` picks, as they were recorded; a row chained before
    notices had ids is named by its seq."""
    rows = conn.execute(
        f"""SELECT recipient, json_extract(details, '$.status'), json_extract(details, '$.on'),
                   COALESCE(json_extract(details, '$.how'), ''), seq,
                   COALESCE(json_extract(details, '$.notice_id'), 'seq-' || seq),
                   COALESCE(case_id, ''), json_extract(details, '$.closes')
            FROM events WHERE event = ?{where} ORDER BY seq""",
        (EVENT, *params),
    )
    return [Notice(*row) for row in rows]


def open_notices(conn: sqlite3.Connection, subject_ref: str | None = None) -> list[Notice]:
    """Every notice still owed (``to_notify`` and no ``done`` event closing it), oldest
    first; with ``subject_ref``, this person's only."""
    every = _read(conn, "", ()) if subject_ref is None else for_subject(conn, subject_ref)
    closed = {n.closes for n in every if n.closes}
    return [n for n in every if n.status == TO_NOTIFY and n.notice_id not in closed]


def find(conn: sqlite3.Connection, notice_id: str) -> tuple[Notice | None, bool]:
    """(the notice with this id, whether a ``done`` event already closed it)."""
    every = _read(conn, "", ())
    found = next((n for n in every if n.notice_id == notice_id and n.closes is None), None)
    return found, any(n.closes == notice_id for n in every)


def for_subject(conn: sqlite3.Connection, subject_ref: str) -> list[Notice]:
    """Every notice recorded for this subject, oldest first (``done`` events included)."""
    chained, params = period_keys.match(conn, subject_ref)  # every period not forgotten
    return _read(conn, f" AND {chained}", tuple(params))
