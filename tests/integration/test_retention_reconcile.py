"""`retention sweep --reconcile` against the sandbox (in-process): expired tickets the ledger
does not know, found by their ``expires_YYYY_MM`` tag, all of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapzen.clients.origin import mounted
from snapzen.commands.retention import expired_tags, run_sweep
from snapzen.support.settings import Settings, load_settings
from tests.fakes import BASE, SandboxApis

TODAY = datetime.now(UTC).date()


@pytest.fixture
def settings(sync_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SNAPZEN_TRANSFER__PURGE_ON_EXPIRY", "false")
    return load_settings()


@pytest.fixture
def zd() -> Iterator[SandboxApis]:
    apis = SandboxApis()
    with mounted(BASE + "/", apis.adapter):
        yield apis


def plant(zd: SandboxApis, tag: str, count: int) -> set[int]:
    """``count`` snapzen tickets tagged ``tag`` that no ledger knows, long enough ago for
    search's index to hold them."""
    with zd.store.lock:
        planted = {
            int(
                zd.store.create_ticket(
                    {
                        "comment": {"body": "hi"},
                        "status": "solved",
                        "tags": ["snapengage", tag],
                        "external_id": f"snapengage:lost-{n}",
                    },
                    False,
                    None,
                ).data["id"]
            )
            for n in range(count)
        }
    clock = zd.store.clock
    lag = zd.store.cfg.search_index_lag_seconds
    zd.store.clock = lambda: clock() + lag
    return planted


def test_reconcile_deletes_every_expired_ticket_past_search_s_1000_results(
    settings: Settings, zd: SandboxApis
) -> None:
    """Search stops at 1,000 results a query; a month with more expired tickets is read whole
    (the search export), so one sweep deletes them all and `found` is the true number."""
    tag = expired_tags(TODAY, 3)[1]  # of three months, only the middle one holds tickets
    planted = plant(zd, tag, 1_050)
    result = run_sweep(settings, reconcile=True, reconcile_months=3)
    assert result.reconciled is not None
    assert result.reconciled["months"] == 3
    assert result.reconciled["found"] == 1_050
    assert result.reconciled["deleted"] == 1_050
    assert planted.isdisjoint(t["id"] for t in zd.tickets)
    # The export's paced budget went to the month that had tickets: two pages of 1,000.
    assert zd.requests["zendesk.search_export"] == 2
    assert zd.requests["search_count"] == 3
