"""Backfill windows are UTC days whatever `snapengage.timezone` says: with a SnapEngage that
answers in the asked timezone (as the real one does), every chat of each UTC day is read
before the day is recorded finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner
from werkzeug.wrappers import Request

from snapzen.cli.main import app
from snapzen.ledger.store.db import open_db
from tests.fakes import ORG, SandboxApis, make_case

TODAY = datetime.now(UTC).date()


@pytest.fixture
def zoned(apis: SandboxApis) -> SandboxApis:
    """The sandbox, whose SnapEngage filters on the chat's day in the request's ``timezone``
    (as the real one does); the zones asked for are noted in ``zones_asked``."""
    apis.zones_asked = []  # type: ignore[attr-defined]

    def note(request: Request) -> None:
        apis.zones_asked.append(request.args.get("timezone", "Etc/UTC"))  # type: ignore[attr-defined]

    apis.answer(f"/snapengage/api/v2/{ORG}/logs", note)
    return apis


def test_every_hour_of_each_utc_day_is_read_in_a_non_utc_timezone(
    sync_env: Path, zoned: SandboxApis, monkeypatch: pytest.MonkeyPatch
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
