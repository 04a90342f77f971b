# ruff: noqa: E501  (the decision table reads one row per line)
"""The transfer decision as a table, per regime and per basis (docs/auditing.md has the same
table for a DPO): controller country × visitor country × recipient and its basis × consent
evidence × contract evidence → outcome, basis, reason, regime."""

from __future__ import annotations

from typing import Any

import pytest

from snapzen.policy.consent import decide
from snapzen.policy.models import Decision, LegalBasis, Outcome, parse_case
from snapzen.support.settings import ConsentSettings, TransferSettings
from tests.fakes import NOTICE_SHA256, NOTICES, make_case, recent

ZENDESK_US_DPF = {
    "name": "Zendesk, Inc.",
    "country": "US",
    "system": "zendesk",
    "basis": "adequacy",
    "certification": "DPF list: Zendesk, Inc. (EU-US DPF and UK Extension)",
    "checked_on": "2026-11-30",
}
ZENDESK_US_DEROGATION = {"name": "Zendesk, Inc.", "country": "US", "system": "zendesk"}
ZENDESK_IE = {"name": "Zendesk (Dublin)", "country": "IE", "system": "zendesk", "basis": "adequacy"}
ZENDESK_AU_SCCS = {
    "name": "Zendesk AU",
    "country": "AU",
    "system": "zendesk",
    "basis": "safeguards",
    "instrument": "uk_addendum",
    "reference": "DPA 2026 annex 3",
    "tra_date": "2026-10-01",
}

CONSENT = ConsentSettings(
    notices=NOTICES,
    contract_variable="order_ref",
    sources=["javascript_variables", "operator_variables", "labels"],
)


def transfer(controller: str, recipient: dict[str, Any] | None = None) -> TransferSettings:
    return TransferSettings(
        controller_country=controller,
        recipients=[recipient or ZENDESK_US_DEROGATION],  # type: ignore[list-item]
    )


def decided(
    controller: str,
    recipient: dict[str, Any] | None = None,
    policy: ConsentSettings = CONSENT,
    **kwargs: Any,
) -> Decision:
    raw = make_case("c1", started=recent(), **kwargs)
    return decide(parse_case(raw), policy, transfer(controller, recipient))


ORDER = (("order_ref", "ORD-1001"),)


@pytest.mark.parametrize(
    ("controller", "recipient", "kwargs", "expected"),
    [
        # --- a controller elsewhere: the visitor's location decides (Art. 3(2))
        ("US", None, {"country": "US", "consent": None}, ("not_restricted", None, "controller_and_visitor_outside_area", None)),
        ("US", None, {"country": "us", "consent": "no"}, ("not_restricted", None, "controller_and_visitor_outside_area", None)),
        ("US", None, {"country": "DE", "consent": "yes"}, ("eligible", "art49_1a", None, "eu_gdpr")),
        ("US", None, {"country": "GB", "consent": "yes"}, ("eligible", "art49_1a", None, "uk_gdpr")),
        ("US", None, {"country": "UK", "consent": None}, ("withheld", None, "no_consent_recorded", "uk_gdpr")),
        ("US", None, {"country": None, "consent": None}, ("withheld", None, "no_consent_recorded", "uk_gdpr+eu_gdpr")),
        ("US", None, {"country": "XYZ", "consent": "yes"}, ("eligible", "art49_1a", None, "uk_gdpr+eu_gdpr")),
        ("US", None, {"country": "NO", "consent": "maybe"}, ("withheld", None, "consent_value_not_accepted", "eu_gdpr")),
        ("US", None, {"country": "DE", "consent": " yes "}, ("withheld", None, "consent_value_not_accepted", "eu_gdpr")),
        ("US", None, {"country": "DE", "consent": ""}, ("withheld", None, "consent_value_not_accepted", "eu_gdpr")),
        # --- a UK controller: UK GDPR for every chat, wherever the visitor is
        ("GB", None, {"country": "US", "consent": None}, ("withheld", None, "no_consent_recorded", "uk_gdpr")),
        ("GB", None, {"country": "FR", "consent": "yes"}, ("eligible", "art49_1a", None, "uk_gdpr")),
        ("GB", ZENDESK_US_DPF, {"country": "FR", "consent": None}, ("eligible", "art45", None, "uk_gdpr")),
        ("GB", ZENDESK_US_DPF, {"country": "GB", "consent": "maybe"}, ("eligible", "art45", None, "uk_gdpr")),
        # An EEA recipient is a restricted transfer under UK GDPR, covered by UK adequacy.
        ("GB", ZENDESK_IE, {"country": "GB", "consent": None}, ("eligible", "art45", None, "uk_gdpr")),
        ("GB", ZENDESK_AU_SCCS, {"country": "GB", "consent": None}, ("eligible", "art46", None, "uk_gdpr")),
        # --- an EEA controller: EU GDPR; an EEA recipient is no transfer
        ("IE", ZENDESK_IE, {"country": "US", "consent": "no"}, ("not_restricted", None, "destination_in_area", "eu_gdpr")),
        ("DE", ZENDESK_US_DPF, {"country": "US", "consent": None}, ("eligible", "art45", None, "eu_gdpr")),
        ("DE", None, {"country": "US", "consent": None}, ("withheld", None, "no_consent_recorded", "eu_gdpr")),
        # --- a refusal always wins, whatever other basis exists
        ("GB", ZENDESK_US_DPF, {"country": "GB", "consent": "no"}, ("withheld", None, "consent_refused", "uk_gdpr")),
        ("GB", ZENDESK_AU_SCCS, {"country": "GB", "consent": "Declined"}, ("withheld", None, "consent_refused", "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": "no", "extra": ORDER}, ("withheld", None, "consent_refused", "uk_gdpr")),
        # --- the contract derogation: only with the chat's own evidence; consent first
        ("GB", None, {"country": "GB", "consent": None, "extra": ORDER}, ("eligible", "art49_1b", None, "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": "yes", "extra": ORDER}, ("eligible", "art49_1a", None, "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": None, "extra": (("order_ref", "  "),)}, ("withheld", None, "no_consent_recorded", "uk_gdpr")),
        # --- consent that can be shown: a receipt and a listed notice version
        ("GB", None, {"country": "GB", "consent": "yes", "receipt": None}, ("withheld", None, "consent_without_evidence", "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": "yes", "notice_version": None}, ("withheld", None, "consent_without_evidence", "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": "yes", "notice_version": "v0"}, ("withheld", None, "notice_version_not_listed", "uk_gdpr")),
        ("GB", None, {"country": "GB", "consent": "1", "receipt": None, "extra": ORDER}, ("eligible", "art49_1b", None, "uk_gdpr")),
    ],
)  # fmt: skip
def test_decision_table(
    controller: str,
    recipient: dict[str, Any] | None,
    kwargs: dict[str, Any],
    expected: tuple[str, str | None, str | None, str | None],
) -> None:
    decision = decided(controller, recipient, **kwargs)
    basis = decision.basis.value if decision.basis else None
    if decision.outcome is Outcome.NOT_RESTRICTED:
        basis = None
    assert (decision.outcome.value, basis, decision.reason, decision.regime) == expected


def test_adequacy_row_names_the_instrument_and_the_certification() -> None:
    decision = decided("GB", ZENDESK_US_DPF, country="GB", consent=None)
    assert decision.mechanism_ref is not None
    assert "SI 2023/1028" in decision.mechanism_ref
    assert "DPF list: Zendesk" in decision.mechanism_ref
    assert decision.facts["recipient_basis"] == "adequacy"
    assert decision.facts["checked_on"] == "2026-11-30"
    eu = decided("DE", ZENDESK_US_DPF, country="DE", consent=None)
    assert eu.mechanism_ref is not None and "2023/1795" in eu.mechanism_ref


def test_an_irish_recipient_of_a_uk_controller_is_recorded_under_uk_adequacy() -> None:
    decision = decided("GB", ZENDESK_IE, country="GB", consent=None)
    assert decision.restricted
    assert decision.mechanism_ref == "UK GDPR: DPA 2018 Sch. 21 para. 5 (EEA states)"


def test_safeguards_row_names_the_clauses_and_the_risk_assessment() -> None:
    decision = decided("GB", ZENDESK_AU_SCCS, country="GB", consent=None)
    assert decision.mechanism_ref == "uk_addendum DPA 2026 annex 3 (TRA 2026-10-01)"
    assert decision.facts["tra_date"] == "2026-10-01"


def test_consent_row_records_the_notice_hash_and_receipt() -> None:
    decision = decided("GB", None, country="GB", consent="yes", receipt="rcpt-42")
    assert decision.basis is LegalBasis.ART49_1A
    assert decision.evidence is not None
    assert (decision.evidence.receipt, decision.evidence.notice_version) == ("rcpt-42", "v1")
    assert decision.facts["notice_sha256"] == NOTICE_SHA256
    assert decision.evidence.observed_at is None  # the chat's start is not when consent was given


def test_contract_row_records_the_chats_own_evidence() -> None:
    decision = decided("GB", None, country="GB", consent=None, extra=ORDER)
    assert decision.facts["contract_reference"] == "ORD-1001"
    assert decision.mechanism_ref == "contract evidence order_ref=ORD-1001"


def test_without_require_evidence_a_bare_value_counts_but_an_unlisted_notice_does_not() -> None:
    lax = ConsentSettings(require_evidence=False, notices=NOTICES)
    bare = decided("GB", None, lax, country="GB", consent="yes", receipt=None, notice_version=None)
    assert bare.basis is LegalBasis.ART49_1A
    unlisted = decided("GB", None, lax, country="GB", consent="yes", notice_version="v9")
    assert unlisted.reason == "notice_version_not_listed"


def test_with_no_notice_listed_consent_cannot_count() -> None:
    """require_evidence (the default) with no consent.notices: nothing shows which risk
    statement the visitor saw, so no chat goes under Art. 49(1)(a)."""
    decision = decided("GB", None, ConsentSettings(), country="GB", consent="yes")
    assert decision.reason == "notice_version_not_listed"


def test_no_contract_variable_means_no_contract_basis() -> None:
    policy = ConsentSettings(notices=NOTICES)
    decision = decided("GB", None, policy, country="GB", consent=None, extra=ORDER)
    assert decision.reason == "no_consent_recorded"


def test_custom_variable_and_values() -> None:
    policy = ConsentSettings(
        variable="chat_transfer_ok", accepted_values=["oui"], require_evidence=False
    )
    raw = make_case("c1", started=recent(), country="FR", consent=None)
    raw["javascript_variables"] = [{"name": "Chat_Transfer_OK", "value": "OUI"}]
    decision = decide(parse_case(raw), policy, transfer("US"))
    assert decision.basis is LegalBasis.ART49_1A


@pytest.mark.parametrize("where", ["operator_variables", "labels"])
def test_consent_set_by_agents_is_not_consent_by_default(where: str) -> None:
    policy = ConsentSettings(notices=NOTICES)
    decision = decided("GB", None, policy, country="GB", consent="yes", consent_in=where)
    assert (decision.outcome, decision.reason) == (Outcome.WITHHELD, "no_consent_recorded")
    configured = ConsentSettings(notices=NOTICES, sources=["javascript_variables", where])
    evidence = decided("GB", None, configured, country="GB", consent="yes", consent_in=where)
    assert evidence.evidence is not None and evidence.evidence.source == where
    assert evidence.basis is LegalBasis.ART49_1A
