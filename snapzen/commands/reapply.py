"""`snapzen ledger reapply-erasures`: after restoring a backup by hand, re-apply every
erasure and request of the erasure journal (withhold the erased people's chats, record their
deleted tickets, re-append request events) before the next sync."""

from __future__ import annotations

from pathlib import Path

from snapzen.commands.ledger_open import locked
from snapzen.ledger.rights import erasure_journal, erasure_reapply, forget
from snapzen.ledger.rights.erasure_reapply import ReapplyResult
from snapzen.support import clock
from snapzen.support.settings import Settings, require_ledger_key


def reapply_journal(
    settings: Settings, journal: Path | None, wait_seconds: float
) -> tuple[ReapplyResult, Path]:
    """The result and the journal read (default ledger.erasure_journal). An edited journal:
    JournalDamaged (exit 2, the line named), nothing applied."""
    key = require_ledger_key(settings)
    live = settings.ledger.erasure_journal_path
    path = journal or live
    with locked(settings, wait_seconds) as db:
        known = erasure_journal.ledger_erasures(db.conn)
        if path == live:
            erasure_journal.migrate(path, key, known)  # an old-format journal, once
        contents = erasure_journal.read(path, key, known=known)
        journals = [p for p in dict.fromkeys((live, path)) if p.is_file()]
        # A request period forgotten stays forgotten: its requests are not re-appended, and
        # the months and request periods the journals forgot are forgotten again, as restore.
        gone = forget.journalled_requests(journals, key)
        result = erasure_reapply.reapply(
            db, contents.erasures, requests=contents.requests, forgotten=gone
        )
        forget.reapply(
            db, journals, key, now=clock.now(), actor="reapply-erasures",
            how="ledger reapply-erasures", live=live,
        )  # fmt: skip
        forget.compact_journal(db.conn, live, key, clock.now())
    return result, path
