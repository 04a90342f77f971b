"""Staging keeps the case it validated for ``prepare`` (parse once): the prepared ticket and
ledger draft must be exactly those of a pass that parses the stored payload afresh."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from snapzen.ledger import outbox
from snapzen.ledger.db import open_db
from snapzen.support.settings import Settings
from snapzen.sync.prepare import CasePreparer
from snapzen.sync.prepared import PreparedCases
from snapzen.sync.tuning import Tuning
from tests.fakes import make_case, recent

KEY = b"k" * 32


def new_pipeline(settings: Settings, db: Any, cache_size: int = 400) -> PreparedCases:
    """The part of the pass that stages and prepares cases, without a prepare worker."""
    return PreparedCases(
        db,
        CasePreparer(settings, KEY),
        batch_size=100,
        settled_before=lambda: datetime.now(UTC),
        tuning=Tuning(parsed_cache_size=cache_size),
    )


def prepared(p: PreparedCases, case_id: str) -> tuple[dict[str, Any] | None, Any]:
    [ready] = [r for r in outbox.ready_cases(p.db, p.settled_before(), 100) if r.case_id == case_id]
    result = p.prepare_here(ready)
    ticket = result.ticket.model_dump(mode="json") if result.ticket else None
    return ticket, (result.draft, result.terminal, result.error)


def stage(p: PreparedCases, *raws: dict[str, Any]) -> int:
    """Staged as a fetched page is: validated as the readers do, stored by the pass."""
    rows = p.stored([p.stage("w1", raw) for raw in raws])
    return outbox.stage(p.db, rows, datetime.now(UTC))


CASES = [
    make_case("eu-consent", started=recent(180), country="DE", consent="yes"),
    make_case("eu-refused", started=recent(180), country="DE", consent="no"),
    make_case("us", started=recent(180), country="US", consent=None),
    make_case("offline", started=recent(180), kind="offline"),
    make_case("card", started=recent(180), messages=[("", "my card 4111 1111 1111 1111 thanks")]),
]


@pytest.mark.parametrize("raw", CASES, ids=lambda raw: raw["id"])
def test_kept_case_prepares_exactly_like_a_fresh_parse(settings: Settings, raw: dict) -> None:
    db = open_db(settings.ledger.path)
    kept = new_pipeline(settings, db)
    stage(kept, raw)
    assert raw["id"] in kept.parsed
    fresh = new_pipeline(settings, db)  # nothing kept: parses the stored JSON
    assert prepared(fresh, raw["id"]) == prepared(kept, raw["id"])
    assert raw["id"] not in kept.parsed  # used once


def test_a_payload_changed_since_staging_is_parsed_again(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    first = make_case("c1", started=recent(180), messages=[("", "old text")])
    later = make_case("c1", started=recent(180), messages=[("", "new text")])
    stale = new_pipeline(settings, db)
    stage(stale, first)
    stage(new_pipeline(settings, db), later)  # another fetch refreshed the stored payload
    ticket, _ = prepared(stale, "c1")
    assert ticket is not None
    assert "new text" in ticket["comments"][0]["value"]
    assert "old text" not in ticket["comments"][0]["value"]


def test_values_json_cannot_hold_are_not_kept(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    raw = make_case("c1", started=recent(180))
    raw["created_at_date"] = datetime(2020, 1, 1, tzinfo=UTC)  # stored as text (default=str)
    p = new_pipeline(settings, db)
    stage(p, raw)
    assert "c1" not in p.parsed
    assert prepared(p, "c1") == prepared(new_pipeline(settings, db), "c1")


def test_kept_cases_are_bounded(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    p = new_pipeline(settings, db, cache_size=3)
    stage(p, *(make_case(f"c{i}", started=recent(180)) for i in range(5)))
    assert p.parsed.ids() == ["c2", "c3", "c4"]  # oldest dropped first
    assert prepared(p, "c0") == prepared(new_pipeline(settings, db), "c0")


def test_stage_counts_a_case_id_repeated_in_a_page_once(settings: Settings) -> None:
    db = open_db(settings.ledger.path)
    p = new_pipeline(settings, db)
    raw = make_case("c1", started=recent(180))
    assert stage(p, raw, make_case("c2", started=recent(180)), raw) == 2
    assert stage(p, raw) == 0


def test_nan_from_a_response_is_stored_as_json_wrote_it(settings: Settings) -> None:
    import json

    from snapzen.support import jsoncodec
    from snapzen.sync.prepare import CasePreparer

    preparer = CasePreparer(settings, KEY)
    invalid = json.loads(
        '{"id": null, "chat_duration": NaN}', parse_constant=jsoncodec.parse_constant
    )
    staged = preparer.stage("w1", invalid)
    # The synthetic id is the one earlier versions gave this payload (NaN written as NaN).
    assert staged.row.case_id == outbox.synthetic_case_id(
        json.dumps(invalid, ensure_ascii=False, default=str)
    )
    text = '{"id": "c1", "type": "chat", "created_at_seconds": 1795932516, "country_code": NaN}'
    valid = json.loads(text, parse_constant=jsoncodec.parse_constant)
    staged = preparer.stage("w1", valid)
    assert "NaN" in staged.row.raw_json  # not orjson's silent null
    assert staged.case is None  # not kept for parse-once: prepared from the stored text
