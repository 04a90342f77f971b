"""The consent policy as a table: controller × country × evidence × widget × mechanism →
outcome. The table is for a controller outside the EEA/UK (Art. 3(2): the visitor's country
decides); the controller-established-in-the-area rule has its own tests below."""

from __future__ import annotations

import pytest

from snapzen.policy.consent import decide
from snapzen.policy.models import LegalBasis, Outcome, parse_case
from snapzen.support.settings import ConsentSettings
from tests.fakes import make_case, recent

POLICY = ConsentSettings(
    controller_country="US",
    contract_widgets=["contract-widget"],
    sources=["javascript_variables", "operator_variables", "labels"],
)


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
            "controller_and_visitor_outside_area",
        ),
        (
            {"country": "us", "consent": "no"},
            "w",
            Outcome.NOT_RESTRICTED,
            LegalBasis.NOT_RESTRICTED,
            "controller_and_visitor_outside_area",
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
    policy = ConsentSettings(
        controller_country="US",
        mechanism=mechanism,  # type: ignore[arg-type]
        mechanism_ref="EU-US DPF",
    )
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
    policy = ConsentSettings(
        controller_country="US", variable="chat_transfer_ok", accepted_values=["oui"]
    )
    raw = make_case("c1", started=recent(), country="FR", consent=None)
    raw["javascript_variables"] = [{"name": "Chat_Transfer_OK", "value": "OUI"}]
    decision = decide(parse_case(raw), "w", policy)
    assert decision.basis is LegalBasis.ART49_1A


# --- where the controller is established (Art. 3, EDPB Guidelines 05/2021) ----------------


def test_controller_in_the_area_makes_every_chat_restricted() -> None:
    """An Irish controller sending to Zendesk US transfers a US visitor's chat too: without
    consent it is withheld, and the visitor's country stays a recorded fact."""
    policy = ConsentSettings(controller_country="IE")
    decision = decide(case(country="US", consent=None), "w", policy)
    assert (decision.outcome, decision.reason) == (Outcome.WITHHELD, "no_consent_recorded")
    assert decision.origin_country == "US"
    consented = decide(case(country="US", consent="yes"), "w", policy)
    assert (consented.outcome, consented.basis) == (Outcome.ELIGIBLE, LegalBasis.ART49_1A)


def test_controller_elsewhere_follows_the_visitor() -> None:
    policy = ConsentSettings(controller_country="US")
    assert decide(case(country="US", consent=None), "w", policy).outcome is Outcome.NOT_RESTRICTED
    assert decide(case(country="FR", consent=None), "w", policy).outcome is Outcome.WITHHELD


def test_destination_inside_the_area_is_no_restricted_transfer() -> None:
    policy = ConsentSettings(controller_country="DE", destination_country="IE")
    decision = decide(case(country="FR", consent="no"), "w", policy)
    assert (decision.outcome, decision.reason) == (
        Outcome.NOT_RESTRICTED,
        "destination_in_area",
    )


def test_safeguard_per_destination() -> None:
    policy = ConsentSettings(
        controller_country="GB",
        destination_country="JP",
        safeguards={"JP": {"mechanism": "art45", "ref": "EU-Japan adequacy 2019/419"}},  # type: ignore[dict-item]
    )
    decision = decide(case(country="GB", consent="no"), "w", policy)
    assert (decision.basis, decision.mechanism_ref) == (
        LegalBasis.ART45,
        "EU-Japan adequacy 2019/419",
    )
    # A safeguard for another destination does not cover this one.
    other = ConsentSettings(
        controller_country="GB",
        safeguards={"JP": {"mechanism": "art45", "ref": "EU-Japan adequacy"}},  # type: ignore[dict-item]
    )
    assert decide(case(country="GB", consent="no"), "w", other).outcome is Outcome.WITHHELD


# --- whose consent counts ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["operator_variables", "labels"])
def test_consent_set_by_agents_is_not_consent_by_default(where: str) -> None:
    policy = ConsentSettings(controller_country="GB")
    decision = decide(case(country="GB", consent="yes", consent_in=where), "w", policy)
    assert (decision.outcome, decision.reason) == (Outcome.WITHHELD, "no_consent_recorded")
    configured = ConsentSettings(controller_country="GB", sources=["javascript_variables", where])
    evidence = decide(case(country="GB", consent="yes", consent_in=where), "w", configured)
    assert evidence.evidence is not None and evidence.evidence.source == where


def test_receipt_and_notice_version_are_recorded_and_no_time_is_invented() -> None:
    policy = ConsentSettings(
        controller_country="GB",
        receipt_variable="consent_receipt",
        notice_version_variable="notice_version",
    )
    raw = make_case("c1", started=recent(), country="GB", consent="yes")
    raw["javascript_variables"] += [
        {"name": "consent_receipt", "value": "rcpt-42"},
        {"name": "Notice_Version", "value": "2026-03"},
    ]
    evidence = decide(parse_case(raw), "w", policy).evidence
    assert evidence is not None
    assert (evidence.receipt, evidence.notice_version) == ("rcpt-42", "2026-03")
    assert evidence.observed_at is None  # the chat's start is not when consent was given
