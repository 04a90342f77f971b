"""`snapzen ledger hold add | remove | list`: legal holds (Art. 17(3)(e)) keep tickets out of
the retention sweep and erasure; each change is a chained event under the writer lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snapzen.commands.ledger_open import locked, subject_of
from snapzen.ledger.rights import holds
from snapzen.ledger.rights.holds import Hold
from snapzen.ledger.store.db import open_ledger, transaction
from snapzen.support import clock, errors
from snapzen.support.settings import Settings


@dataclass
class HoldChange:
    target: str  # case:ID, ticket:ID or subject:REF (never the email)
    row: dict[str, Any] | None  # the ledger row appended; None: nothing to change


def change(
    settings: Settings,
    *,
    add: bool,
    case: str | None,
    ticket: int | None,
    email: str | None,
    reason: str,
    actor: str,
    wait_seconds: float,
) -> HoldChange:
    """Place (``add``) or lift a hold on one case, ticket or person; LockHeld when another
    snapzen holds the writer lock and ``wait_seconds`` is 0."""
    if sum(v is not None for v in (case, ticket, email)) != 1:
        raise errors.ConfigError("give exactly one of --case, --ticket or --email")
    ref = subject_of(settings, email) if email is not None else None
    target = holds.target_for(case_id=case, ticket_id=ticket, subject=ref)
    with locked(settings, wait_seconds) as db, transaction(db) as conn:
        row = holds.change(conn, target, reason, add=add, actor=actor, now=clock.now())
    return HoldChange(target, row)


def active(settings: Settings) -> list[Hold]:
    """The active holds, oldest first."""
    with open_ledger(settings.ledger, read_only=True) as db:
        return list(holds.active(db.conn).holds)
