"""`snapzen ledger reapply-erasures`: after restoring a backup by hand, re-apply every
erasure and request of the erasure journal (withhold the erased people's chats, record their
deleted tickets, re-append request events) before the next sync."""

from __future__ import annotations

from pathlib import Path

from snapzen.commands.ledger_open import locked
from snapzen.ledger.rights import erasure_journal, erasure_reapply
from snapzen.ledger.rights.erasure_reapply import ReapplyResult
from snapzen.support.settings import Settings, require_ledger_key


def reapply_journal(
    settings: Settings, journal: Path | None, wait_seconds: float
) -> tuple[ReapplyResult, Path]:
    """The result and the journal read (default ledger.erasure_journal). An edited journal:
    JournalDamaged (exit 2, the line named), nothing applied."""
    key = require_ledger_key(settings)
    path = journal or settings.ledger.erasure_journal_path
    with locked(settings, wait_seconds) as db:
        known = erasure_journal.ledger_erasures(db.conn)
        if path == settings.ledger.erasure_journal_path:
            erasure_journal.migrate(path, key, known)  # an old-format journal, once
        contents = erasure_journal.read(path, key, known=known)
        result = erasure_reapply.reapply(db, contents.erasures, requests=contents.requests)
    return result, path
