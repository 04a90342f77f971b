"""Every fetched page is staged, however small and many (``fetch_window_groups``), none
dropped; pages are validated on the reader thread that fetched them."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from snapzen.commands import service
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from snapzen.sync.prepare import CasePreparer
from tests.fakes import SandboxApis, make_case, recent


def test_many_small_pages_waiting_at_once_are_all_staged_and_synced(
    settings: Settings, apis: SandboxApis
) -> None:
    # `responses` answers at once: the reader always has the next page waiting.
    apis.page_size = 3
    for widget in ("w1", "w2"):
        apis.add_cases(
            widget,
            [
                make_case(f"{widget}-{i:03d}", started=recent(200 + i), widget=widget)
                for i in range(150)
            ],
        )
    result = service.sync(settings)
    assert result.counts.fetched == 300
    assert result.counts.created == 300
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM cases WHERE status = 'synced'").fetchone()[0] == 300
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_pages_are_validated_on_the_reader_threads_and_stored_by_the_pass(
    settings: Settings, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging's CPU (decode checks, validation, encoding) runs where the page was read, off
    the pass's thread; a case that fails validation is still stored, failed, with its reason."""
    stage = CasePreparer.stage
    threads: set[str] = set()

    def spy(self: CasePreparer, widget: str, raw: Any) -> Any:
        threads.add(threading.current_thread().name)
        return stage(self, widget, raw)

    monkeypatch.setattr(CasePreparer, "stage", spy)
    cases = [make_case(f"w1-{i:03d}", started=recent(200 + i)) for i in range(40)]
    cases[7]["transcripts"] = "not a list"
    apis.add_cases("w1", cases)
    result = service.sync(settings)
    assert threads and all(name.startswith("snapzen-fetch") for name in threads)
    assert result.counts.fetched == 40
    assert result.counts.created == 39
    db = open_db(settings.ledger.path)
    status, error = db.execute(
        "SELECT status, error FROM cases WHERE case_id = 'w1-007'"
    ).fetchone()
    assert status == "failed" and "invalid SnapEngage case" in error
