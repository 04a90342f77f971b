"""`snapzen ledger list | export | subject`: ledger rows, filtered, in chain order.

Each opens the ledger read-only (no lock: an audit never waits for a sync) and streams rows;
the CLI renders them (a table, or csv/json/jsonl through ``write_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from snapzen.commands.ledger_open import known_widget, narrow, open_read, subject_of
from snapzen.ledger.evidence import audit
from snapzen.ledger.evidence.audit import Filters as Filters
from snapzen.ledger.evidence.audit import write_rows as write_rows  # csv, json, jsonl, streamed
from snapzen.ledger.rights.forget import note
from snapzen.support.settings import Settings

# The filters of `list`, `export` and `report` (exit 2 for a bad date or basis), named here so
# the CLI reaches them through commands/.
filters = Filters.from_cli


def ledger_rows(
    settings: Settings, found: Filters, *, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """The matching rows in chain order; exit 2 for a --widget neither configured nor in the
    ledger."""
    db = open_read(settings)
    known_widget(settings, db, found.widget)
    return audit.iter_transfers(db.conn, found, limit=limit)


@dataclass
class SubjectRows:
    ref: str  # the HMAC reference, printed instead of the email
    rows: Iterator[dict[str, Any]]
    # Why nothing may be found: the months the ledger has forgotten (None: none forgotten).
    forgotten: Callable[[], str | None]


def subject_rows(
    settings: Settings, email: str, case_ids: Sequence[str] | None, ticket_ids: Sequence[int] | None
) -> SubjectRows:
    """Every transfer of one person; SubjectCollision (exit 2) for a reference several people
    used, until narrowed by case or ticket ids."""
    ref = subject_of(settings, email)
    db = open_read(settings)
    selected = narrow(db, ref, case_ids, ticket_ids)
    rows = audit.subject_transfers(db.conn, ref)
    if selected is not None:
        rows = (row for row in rows if row["case_id"] in selected)
    return SubjectRows(ref=ref, rows=rows, forgotten=lambda: note(db.conn))
