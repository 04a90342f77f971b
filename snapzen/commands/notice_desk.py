"""`snapzen ledger notices [done]`: the Art. 19 notices still owed (read-only), and recording
one given (under the writer lock; snapzen.commands.art19 chains and journals it)."""

from __future__ import annotations

from datetime import date

from snapzen.commands import art19
from snapzen.commands.ledger_open import locked, open_read
from snapzen.ledger.rights import notices
from snapzen.ledger.rights.notices import Notice as Notice  # for the CLI
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key


def owed(settings: Settings) -> list[Notice]:
    """Every recipient still to be told of an erasure."""
    return notices.open_notices(open_read(settings).conn)


def record_told(
    settings: Settings, notice_id: str, *, when: str, actor: str, wait_seconds: float
) -> Notice:
    """The notice, recorded as given on ``when`` (YYYY-MM-DD; exit 2 otherwise); LockHeld
    when another snapzen holds the writer lock and ``wait_seconds`` is 0."""
    try:
        day = date.fromisoformat(when)
    except ValueError:
        raise errors.ConfigError(f"--when {when!r} is not a date (YYYY-MM-DD)") from None
    with locked(settings, wait_seconds) as db:
        return art19.mark_told(
            db, notice_id, when=day, actor=actor, now=clock.now(),
            journal=settings.ledger.erasure_journal_path,
            journal_key=require_ledger_key(settings),
        )  # fmt: skip
