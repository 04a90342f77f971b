"""The tolerant SnapEngage case model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from snapzen.policy.models import email_address, epoch_to_datetime, parse_case
from snapzen.support.errors import InvalidRecordError

MOMENT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1777636800,
        1777636800000,
        "1777636800",
        "1777636800000",
        1777636800.0,
        "2026-05-01T12:00:00Z",
    ],
)
def test_epoch_seconds_or_milliseconds(value: object) -> None:
    assert epoch_to_datetime(value) == MOMENT


@pytest.mark.parametrize(
    "value",
    [
        *(None, "", "soon", -5, 0, True, float("nan"), float("inf"), "1e309", 10**30, [], {}),
        # Valid ISO times that UTC cannot hold: past the year 9999, or before year 1.
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_unusable_times_are_none(value: object) -> None:
    assert epoch_to_datetime(value) is None


def test_unknown_fields_allowed_and_optional_fields_optional() -> None:
    case = parse_case({"id": "x", "brand_new_field": {"a": 1}, "transcripts": None})
    assert case.id == "x" and case.transcripts == [] and case.started_at is None


def test_start_prefers_milliseconds_then_seconds_then_date() -> None:
    case = parse_case({"id": "x", "created_at_seconds": 1777636800, "created_at_date": 5})
    assert case.started_at == MOMENT


def test_numbers_where_text_is_expected_are_coerced() -> None:
    case = parse_case(
        {"id": 42, "country_code": 49, "labels": [{"name": "gdpr_consent", "value": True}]}
    )
    assert case.id == "42" and case.country_code == "49"
    assert case.labels[0].value == "true"


@pytest.mark.parametrize(
    "raw",
    [None, [], "x", {"id": ""}, {"id": None}, {"no": "id"}, {"id": "x", "transcripts": "junk"}],
)
def test_unusable_case_raises_one_line_error(raw: object) -> None:
    with pytest.raises(InvalidRecordError) as err:
        parse_case(raw)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("a@b.co", True),
        ("first.last+tag@sub.example.org", True),
        ("a@b", False),
        ("x@@y.com", False),
        ("no-at.example.org", False),
        ("a..b@c.de", False),
        ("", False),
        ("a@-b.com", False),
        ("é@exämple.de", True),
        ("someone@host.local", False),
        ("someone@example.123", False),
        ("someone@example.test", True),
    ],
)
def test_email_validation(email: str, ok: bool) -> None:
    assert (email_address(email) is not None) is ok
