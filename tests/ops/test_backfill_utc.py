"""Backfill windows are UTC days whatever `snapengage.timezone` says: with a SnapEngage that
answers in the asked timezone (as the real one does), every chat of each UTC day is read
before the day is recorded finished."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import responses
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.ledger.store.db import open_db
from tests.fakes import SE_TOKEN, FakeApis, make_case

TODAY = datetime.now(UTC).date()


class ZonedFakeApis(FakeApis):
    """SnapEngage's logs filtered on the chat's day in the request's ``timezone``."""

    zones_asked: list[str]

    def _logs(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._count("logs")
        if request.headers.get("Authorization") != SE_TOKEN:
            return 401, {}, json.dumps({"error": "unauthorized"})
        query = parse_qs(urlsplit(request.url).query)
        zone = query["timezone"][0]
        self.zones_asked = [*getattr(self, "zones_asked", []), zone]
        start, end = (datetime.fromisoformat(query[k][0]).date() for k in ("start", "end"))
        chosen = [
            case
            for case in self.cases.get(query["widgetId"][0], [])
            if start
            <= datetime.fromtimestamp(case["created_at_milliseconds"] / 1000, ZoneInfo(zone)).date()
            <= end
        ]
        return 200, {}, json.dumps({"cases": chosen, "linkToNextSetOfResults": ""})


@pytest.fixture
def zoned() -> Iterator[ZonedFakeApis]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ZonedFakeApis(rsps)


def test_every_hour_of_each_utc_day_is_read_in_a_non_utc_timezone(
    sync_env: Path, zoned: ZonedFakeApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__TIMEZONE", "America/New_York")
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__OVERLAP_DAYS", "1")
    day = TODAY - timedelta(days=5)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # 00:30-04:30 UTC is still the day before in New York: the hours a local window misses.
    hours = [0.5, 2, 4.5, 12, 23.5]
    zoned.add_cases(
        "w1", [make_case(f"h{h}", started=midnight + timedelta(hours=h)) for h in hours]
    )
    result = CliRunner().invoke(
        app, ["backfill", "--since", day.isoformat(), "--until", day.isoformat(), "-w", "w1"]
    )
    assert result.exit_code == 0, result.output
    assert {t["external_id"] for t in zoned.tickets} == {f"snapengage:h{h}" for h in hours}
    assert set(zoned.zones_asked) == {"Etc/UTC"}
    db = open_db(sync_env)
    assert db.execute("SELECT widget_id, day FROM backfill_windows").fetchall() == [
        ("w1", day.isoformat())
    ]
