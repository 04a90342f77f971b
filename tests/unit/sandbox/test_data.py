"""Synthetic data: deterministic for a seed, hostile, and consistent with its ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pycountry
import pytest

from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.data import Dataset, generate, is_valid_email

ANCHOR = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
# The truth's labels, decided again here from the raw values (the generator labels what it
# draws): the restricted origin region (EEA + UK) and the consent values it writes.
EEA_UK = {"IS", "LI", "NO", "GB"} | {
    *"AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
}
ACCEPTED = {"yes", "true", "1", "accepted", "on"}
REFUSED = {"no", "false", "0", "declined", "off"}


def classify_region(country_code: object) -> str:
    """The region of a raw country code value: restricted, outside or unknown."""
    if not isinstance(country_code, str) or not country_code.strip():
        return "unknown"
    code = {"UK": "GB"}.get(country_code.strip().upper(), country_code.strip().upper())
    if code in EEA_UK:
        return "restricted"
    return "outside" if pycountry.countries.get(alpha_2=code) else "unknown"


def classify_consent(value: object, present: bool) -> str:
    """What a raw gdpr_consent value says: accepted, refused, odd or absent."""
    if not present:
        return "absent"
    if isinstance(value, str) and value.lower() in ACCEPTED:
        return "accepted"
    return "refused" if isinstance(value, str) and value.lower() in REFUSED else "odd"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SandboxConfig(chats=300, seed=7), ANCHOR)


def test_same_seed_same_data_different_seed_different_data() -> None:
    cfg = SandboxConfig(chats=40, seed=3, long_transcripts=0)
    first, second = generate(cfg, ANCHOR), generate(cfg, ANCHOR)
    assert json.dumps(first.cases) == json.dumps(second.cases)
    assert first.truth == second.truth
    assert first.widget_ids == second.widget_ids
    other = generate(SandboxConfig(chats=40, seed=4, long_transcripts=0), ANCHOR)
    assert other.widget_ids != first.widget_ids
    assert [c["id"] for c in other.cases] != [c["id"] for c in first.cases]


def test_cases_sorted_and_within_window(dataset: Dataset) -> None:
    keys = [(c["created_at_milliseconds"], c["id"]) for c in dataset.cases]
    assert keys == sorted(keys)
    anchor_ms = ANCHOR.timestamp() * 1000
    assert all(anchor_ms - 7 * 86_400_000 <= k[0] <= anchor_ms for k in keys)
    assert {c["widget_id"] for c in dataset.cases} == set(dataset.widget_ids)


def _consent_var(case: dict[str, object]) -> tuple[bool, object]:
    for key in ("javascript_variables", "operator_variables", "labels"):
        for var in case[key]:  # type: ignore[attr-defined]
            if var["name"] == "gdpr_consent":
                return True, var["value"]
    return False, None


def test_truth_matches_cases(dataset: Dataset) -> None:
    for case, truth in zip(dataset.cases, dataset.truth, strict=True):
        assert truth["id"] == case["id"]
        assert truth["widget_id"] == case["widget_id"]
        assert truth["type"] == case["type"]
        assert truth["region"] == classify_region(case.get("country_code"))
        present, value = _consent_var(case)
        assert truth["consent"] == classify_consent(value, present)
        assert truth["email_valid"] == is_valid_email(case.get("requested_by"))
        created = datetime.fromisoformat(truth["created_at"].replace("Z", "+00:00"))
        assert int(created.timestamp() * 1000) == case["created_at_milliseconds"]
        if truth["in_progress"]:
            assert case.get("chat_duration", 0) == 0
            assert (ANCHOR - created).total_seconds() < 300


def test_data_is_hostile_enough(dataset: Dataset) -> None:
    truth = dataset.truth
    assert {t["region"] for t in truth} == {"restricted", "outside", "unknown"}
    assert {t["consent"] for t in truth} == {"accepted", "refused", "odd", "absent"}
    assert {t["type"] for t in truth} == {"chat", "offline"}
    assert any(t["in_progress"] for t in truth)
    assert any(not t["email_valid"] for t in truth)
    codes = {t["country_code"] for t in truth}
    assert {"UK", "XX", None, ""} & codes
    text = json.dumps(dataset.cases, ensure_ascii=False)
    for needle in ("<script>", "🙂", "שלום", "مرحبا", "\\n"):
        assert needle in text
    assert max(len(c["transcripts"]) for c in dataset.cases) >= 2000
    longest = max(len(m["message"]) for c in dataset.cases for m in c["transcripts"])
    assert longest > 70_000
    places = {
        key
        for c in dataset.cases
        for key in ("javascript_variables", "operator_variables", "labels")
        if any(v["name"] == "gdpr_consent" for v in c[key])
    }
    assert places == {"javascript_variables", "operator_variables", "labels"}
    offline = [c for c in dataset.cases if c["type"] == "offline"]
    assert all(c["chat_agent_id"] == "" for c in offline)
    visitor_lines = [m for c in dataset.cases for m in c["transcripts"] if m["id"] == ""]
    assert visitor_lines and all(m["alias"] == "" for m in visitor_lines)
    assert any(m["id"].startswith("wc:") for c in dataset.cases for m in c["transcripts"])


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("DE", "restricted"),
        ("uk", "restricted"),
        ("GB", "restricted"),
        ("NO", "restricted"),
        ("US", "outside"),
        ("CH", "outside"),
        ("XX", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_classify_region(code: object, region: str) -> None:
    assert classify_region(code) == region


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("YES", "accepted"),
        ("On", "accepted"),
        ("declined", "refused"),
        ("  YES ", "odd"),
        ("maybe", "odd"),
        (None, "odd"),
        ("", "odd"),
    ],
)
def test_classify_consent(value: object, expected: str) -> None:
    assert classify_consent(value, True) == expected
    assert classify_consent(value, False) == "absent"


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("a@example.com", True),
        ("A.B+tag@Example.co.uk", True),
        ("not-an-email", False),
        ("a@b", False),
        ("x@@y.com", False),
        ("", False),
        (None, False),
        ("a b@c.de", False),
    ],
)
def test_is_valid_email(email: object, valid: bool) -> None:
    assert is_valid_email(email) is valid
