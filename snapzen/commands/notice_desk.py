"""`snapzen ledger notices [done]`: the Art. 19 notices still owed (read-only), and recording
one given (under the writer lock).

An erasure records each recipient snapzen could not erase at itself (SnapEngage, a recipient
of kind other) as ``to_notify`` (snapzen.commands.erase_request). The notice stays open,
listed by `ledger notices`, until the operator has told that recipient and records it with
`ledger notices done ID --when DATE`: a ``notified`` event that closes the notice, chained and
journalled (so a restored backup has it too). Ids, dates and recipient names only.
"""

from __future__ import annotations

from datetime import date

from snapzen.commands.ledger_open import locked
from snapzen.ledger.rights import erasure_journal, notices, period_keys
from snapzen.ledger.rights.notices import Notice as Notice  # for the CLI
from snapzen.ledger.store.db import open_ledger
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key


def owed(settings: Settings) -> list[Notice]:
    """Every recipient still to be told of an erasure."""
    return notices.open_notices(open_ledger(settings.ledger, read_only=True).conn)


def record_told(
    settings: Settings, notice_id: str, *, when: str, actor: str, wait_seconds: float
) -> Notice:
    """The notice, recorded as given on ``when`` (YYYY-MM-DD); LockHeld when another snapzen
    holds the writer lock and ``wait_seconds`` is 0. ConfigError (exit 2): not a date, an
    unknown id, one already done or never owed, a day in the future or before it was owed."""
    try:
        day = date.fromisoformat(when)
    except ValueError:
        raise errors.ConfigError(f"--when {when!r} is not a date (YYYY-MM-DD)") from None
    key = require_ledger_key(settings)
    with locked(settings, wait_seconds) as db:
        now = clock.now()  # once the lock is held: the notice is dated when it is chained
        owed, done = notices.find(db.conn, notice_id)
        if owed is None:
            raise errors.ConfigError(
                f"no Art. 19 notice {notice_id} (see `snapzen ledger notices`)"
            )
        if owed.status != notices.TO_NOTIFY:
            raise errors.ConfigError(
                f"notice {notice_id}: {owed.recipient} was told already (snapzen)"
            )
        if done:
            raise errors.ConfigError(f"notice {notice_id}: already recorded as done")
        if day > now.date():
            raise errors.ConfigError(f"--when {day} is in the future (today is {now.date()})")
        if day < date.fromisoformat(owed.on):
            raise errors.ConfigError(f"--when {day} is before the notice was owed ({owed.on})")
        chained = db.execute("SELECT subject_ref FROM events WHERE seq = ?", (owed.seq,))
        # The person's lookup reference: the notice is chained keyed by its request period.
        person = period_keys.lookup_of(db.conn, str(chained.fetchone()[0]))
        how = f"told by {actor} (the operator)"
        told = Notice(owed.recipient, notices.NOTIFIED, day.isoformat(), how, closes=notice_id)
        journal = settings.ledger.erasure_journal_path
        with erasure_journal.chained(db, journal, key, actor=actor, now=now) as recorder:
            [stored] = notices.record(
                recorder, [told], request_id=owed.request_id, subject_ref=person
            )
    return stored
