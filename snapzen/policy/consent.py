"""The consent policy (GDPR Art. 44–49) as one pure function: case + settings → Decision.

Order of bases (DESIGN.md): a configured Art. 45 adequacy decision or Art. 46 safeguard for the
destination → explicit consent, Art. 49(1)(a) → contract necessity, Art. 49(1)(b), only for
widgets configured for it → otherwise withheld, with the reason recorded.
Visitors outside the restricted origin region are ``not_restricted``; an unknown country counts
as restricted because we cannot show it is not.
"""

from __future__ import annotations

from snapzen.policy.countries import normalise_country
from snapzen.policy.models import (
    ConsentEvidence,
    Decision,
    LegalBasis,
    NameValue,
    Outcome,
    SnapEngageCase,
)
from snapzen.support.settings import ConsentSettings, LegalMechanism

_SOURCES = ("javascript_variables", "operator_variables", "labels")


def find_consent(case: SnapEngageCase, variable: str) -> ConsentEvidence | None:
    """The first name/value pair named ``variable`` (case-insensitive), in source order."""
    wanted = variable.strip().lower()
    for source in _SOURCES:
        pairs: list[NameValue] = getattr(case, source)
        for pair in pairs:
            if (pair.name or "").strip().lower() == wanted:
                return ConsentEvidence(
                    source=source,
                    variable=pair.name or variable,
                    value=(pair.value or "")[:200],
                    observed_at=case.started_at,
                )
    return None


def decide(case: SnapEngageCase, widget_id: str, policy: ConsentSettings) -> Decision:
    country = normalise_country(case.country_code)
    if country is not None and country not in policy.restricted_countries:
        return Decision(
            outcome=Outcome.NOT_RESTRICTED, basis=LegalBasis.NOT_RESTRICTED, origin_country=country
        )

    if policy.mechanism is LegalMechanism.ART45:
        return Decision(outcome=Outcome.ELIGIBLE, basis=LegalBasis.ART45, origin_country=country)
    if policy.mechanism is LegalMechanism.ART46:
        return Decision(outcome=Outcome.ELIGIBLE, basis=LegalBasis.ART46, origin_country=country)

    evidence = find_consent(case, policy.variable)
    # Case-insensitive but otherwise exact: " yes " or "yes please" is not clear consent.
    if evidence is not None and evidence.value.lower() in policy.accepted_values:
        return Decision(
            outcome=Outcome.ELIGIBLE,
            basis=LegalBasis.ART49_1A,
            evidence=evidence,
            origin_country=country,
        )
    if widget_id in policy.contract_widgets:
        return Decision(
            outcome=Outcome.ELIGIBLE,
            basis=LegalBasis.ART49_1B,
            evidence=evidence,
            origin_country=country,
        )
    if evidence is None:
        reason = "no_consent_recorded"
    elif evidence.value.strip().lower() in {"no", "false", "0", "declined", "refused", "off"}:
        reason = "consent_refused"
    else:
        reason = "consent_value_not_accepted"
    return Decision(
        outcome=Outcome.WITHHELD, reason=reason, evidence=evidence, origin_country=country
    )
