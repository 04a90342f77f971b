"""The consent policy as a table: country × evidence × widget × mechanism → outcome."""

from __future__ import annotations

import pytest

from snapzen.policy.consent import decide
from snapzen.policy.models import LegalBasis, Outcome, parse_case
from snapzen.support.settings import ConsentSettings
from tests.fakes import make_case, recent

POLICY = ConsentSettings(contract_widgets=["contract-widget"])


def case(**kwargs: object):
    return parse_case(make_case("c1", started=recent(), **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "widget", "outcome", "basis", "reason"),
    [
        (
            {"country": "US", "consent": None},
            "w",
            Outcome.NOT_RESTRICTED,
            LegalBasis.NOT_RESTRICTED,
            None,
        ),
        (
            {"country": "us", "consent": "no"},
            "w",
            Outcome.NOT_RESTRICTED,
            LegalBasis.NOT_RESTRICTED,
            None,
        ),
        ({"country": "DE", "consent": "yes"}, "w", Outcome.ELIGIBLE, LegalBasis.ART49_1A, None),
        (
            {"country": "DE", "consent": "Accepted"},
            "w",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1A,
            None,
        ),
        (
            {"country": "DE", "consent": "ON", "consent_in": "operator_variables"},
            "w",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1A,
            None,
        ),
        (
            {"country": "DE", "consent": "1", "consent_in": "labels"},
            "w",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1A,
            None,
        ),
        ({"country": "GB", "consent": "no"}, "w", Outcome.WITHHELD, None, "consent_refused"),
        ({"country": "UK", "consent": None}, "w", Outcome.WITHHELD, None, "no_consent_recorded"),
        (
            {"country": "NO", "consent": "maybe"},
            "w",
            Outcome.WITHHELD,
            None,
            "consent_value_not_accepted",
        ),
        (
            {"country": "DE", "consent": " yes "},
            "w",
            Outcome.WITHHELD,
            None,
            "consent_value_not_accepted",
        ),
        (
            {"country": "DE", "consent": ""},
            "w",
            Outcome.WITHHELD,
            None,
            "consent_value_not_accepted",
        ),
        # Unknown or junk country counts as restricted.
        ({"country": None, "consent": None}, "w", Outcome.WITHHELD, None, "no_consent_recorded"),
        ({"country": "XYZ", "consent": "yes"}, "w", Outcome.ELIGIBLE, LegalBasis.ART49_1A, None),
        ({"country": "", "consent": None}, "w", Outcome.WITHHELD, None, "no_consent_recorded"),
        # Contract necessity only for the configured widget, and consent still comes first.
        (
            {"country": "FR", "consent": None},
            "contract-widget",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1B,
            None,
        ),
        (
            {"country": "FR", "consent": "no"},
            "contract-widget",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1B,
            None,
        ),
        (
            {"country": "FR", "consent": "yes"},
            "contract-widget",
            Outcome.ELIGIBLE,
            LegalBasis.ART49_1A,
            None,
        ),
    ],
)
def test_policy_table(kwargs, widget, outcome, basis, reason) -> None:
    decision = decide(case(**kwargs), widget, POLICY)
    assert decision.outcome is outcome
    assert decision.basis == basis
    assert decision.reason == reason


@pytest.mark.parametrize("mechanism", ["art45", "art46"])
def test_configured_mechanism_comes_first(mechanism: str) -> None:
    policy = ConsentSettings(mechanism=mechanism, mechanism_ref="EU-US DPF")  # type: ignore[arg-type]
    decision = decide(case(country="DE", consent="no"), "w", policy)
    assert decision.outcome is Outcome.ELIGIBLE
    assert decision.basis == LegalBasis(mechanism)


def test_consent_evidence_is_kept_with_its_source() -> None:
    decision = decide(case(country="DE", consent="yes", consent_in="labels"), "w", POLICY)
    assert decision.evidence is not None
    assert (decision.evidence.source, decision.evidence.variable, decision.evidence.value) == (
        "labels",
        "gdpr_consent",
        "yes",
    )
    assert decision.origin_country == "DE"


def test_custom_variable_and_values() -> None:
    policy = ConsentSettings(variable="chat_transfer_ok", accepted_values=["oui"])
    raw = make_case("c1", started=recent(), country="FR", consent=None)
    raw["javascript_variables"] = [{"name": "Chat_Transfer_OK", "value": "OUI"}]
    decision = decide(parse_case(raw), "w", policy)
    assert decision.basis is LegalBasis.ART49_1A
