"""`snapzen ledger reapply-erasures`: after restoring a backup by hand, re-apply every
erasure and request of the erasure journal (withhold the erased people's chats, record their
deleted tickets, re-append request events) before the next sync, as `ledger restore` does
(snapzen.ledger.rights.erasure_reapply.restore_union, with no replaced ledger)."""

from __future__ import annotations

from pathlib import Path

from snapzen.commands.ledger_open import locked
from snapzen.ledger.rights import erasure_journal
from snapzen.ledger.rights.erasure_reapply import JournalChoice, ReapplyResult, restore_union
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key


def reapply_journal(
    settings: Settings, journal: Path | None, wait_seconds: float
) -> tuple[ReapplyResult, Path]:
    """The result and the journal read (default ledger.erasure_journal). An edited journal:
    JournalDamaged (exit 2, the line named), nothing applied. A ``journal`` that is not there
    is refused (exit 2): the live journal's lines would be counted as its."""
    if journal is not None and not journal.is_file():
        raise errors.ConfigError(f"--journal {journal}: no such file")
    live = settings.ledger.erasure_journal_path
    choice = JournalChoice(journal or live, live, require_ledger_key(settings))
    with locked(settings, wait_seconds) as db:
        # What this ledger committed but never journalled (a writer killed after its commit)
        # goes into the live journal first (erasure_journal.catch_up).
        erasure_journal.prepare(live, choice.key, db.conn)
        how = "ledger reapply-erasures"
        result = restore_union(
            db, choice, None, now=clock.now(), actor="reapply-erasures", command=how
        )
    return result, choice.path or live
