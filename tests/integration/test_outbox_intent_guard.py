"""The write-ahead intent only takes cases that are still pending: a case prepared ahead of its
batch that something else finished meanwhile must never be sent a second time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from snapzen.ledger.store import outbox
from snapzen.ledger.store.db import open_db
from snapzen.support.errors import FatalError
from snapzen.support.settings import Settings
from tests.fakes import staged_case


def _draft(index: int) -> dict[str, object]:
    return {
        "batch_index": index,
        "outcome": "eligible",
        "legal_basis": "art49_1a",
        "subject_ref": None,
        "transfer": None,
    }


def test_intent_for_a_case_no_longer_pending_writes_nothing_and_aborts(
    settings: Settings,
) -> None:
    db = open_db(settings.ledger.path)
    now = datetime.now(UTC)
    outbox.stage(db, [staged_case("a"), staged_case("b")], now)
    outbox.mark_pushing(db, "batch-1", {"a": _draft(0)}, now, "run-1")
    outbox.record_synced(db, {"a": 101}, now, run_id="run-1", actor="test")

    with pytest.raises(FatalError, match="1 of its 2 cases are no longer pending"):
        outbox.mark_pushing(db, "batch-2", {"a": _draft(0), "b": _draft(1)}, now, "run-1")

    rows = dict(db.execute("SELECT case_id, status || ':' || COALESCE(batch_id, '') FROM cases"))
    assert rows == {"a": "synced:batch-1", "b": "pending:"}  # the whole intent rolled back
