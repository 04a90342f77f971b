"""Art. 19 notices still owed, and recording that one was given (`snapzen ledger notices`).

An erasure records each recipient snapzen could not erase at itself (SnapEngage, a recipient
of kind other) as ``to_notify`` (snapzen.commands.erasure_notices). The notice stays open,
listed by `ledger notices`, until the operator has told that recipient and records it with
`ledger notices done ID --when DATE`: a ``notified`` event that closes the notice, chained and
journalled (so a restored backup has it too). Ids, dates and recipient names only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.ledger.rights import erasure_journal, notices
from snapzen.ledger.store.db import transaction
from snapzen.support.errors import ConfigError


def mark_told(
    db: sqlite_utils.Database,
    notice_id: str,
    *,
    when: date,
    actor: str,
    now: datetime,
    journal: Path | None = None,
    journal_key: bytes | None = None,
) -> notices.Notice:
    """Record that the recipient of ``notice_id`` was told on ``when`` (the caller holds the
    writer lock). ConfigError (exit 2): an unknown id, one already done or never owed, a day
    in the future or before the notice was owed."""
    owed, done = notices.find(db.conn, notice_id)
    if owed is None:
        raise ConfigError(f"no Art. 19 notice {notice_id} (see `snapzen ledger notices`)")
    if owed.status != notices.TO_NOTIFY:
        raise ConfigError(f"notice {notice_id}: {owed.recipient} was told already (snapzen)")
    if done:
        raise ConfigError(f"notice {notice_id}: already recorded as done")
    today = now.astimezone(UTC).date()
    if when > today:
        raise ConfigError(f"--when {when.isoformat()} is in the future (today is {today})")
    if when < date.fromisoformat(owed.on):
        raise ConfigError(f"--when {when.isoformat()} is before the notice was owed ({owed.on})")
    subject = db.conn.execute("SELECT subject_ref FROM events WHERE seq = ?", (owed.seq,))
    subject_ref = subject.fetchone()[0]
    rows: list[dict[str, Any]] = []
    told = notices.Notice(
        owed.recipient,
        notices.NOTIFIED,
        when.isoformat(),
        f"told by {actor} (the operator)",
        closes=notice_id,
    )
    with transaction(db) as conn:
        [stored] = notices.record(
            conn, [told], request_id=owed.request_id, subject_ref=str(subject_ref),
            actor=actor, now=now, rows=rows,
        )  # fmt: skip
    if journal is not None and journal_key is not None:
        erasure_journal.append_requests(journal, journal_key, rows)
    return stored
