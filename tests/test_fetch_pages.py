"""Every fetched page is staged, however many wait at once: a pass stages all the pages its
readers have queued in one turn (``fetch_window_groups``), and none may be dropped."""

from __future__ import annotations

from snapzen import service
from snapzen.ledger.db import open_db
from snapzen.settings import Settings
from tests.fakes import FakeApis, make_case, recent


def test_many_small_pages_waiting_at_once_are_all_staged_and_synced(
    settings: Settings, apis: FakeApis
) -> None:
    # `responses` answers at once, so the readers fill the page queue (8) long before the
    # pass's thread has staged the first page: every turn finds a full queue.
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
