"""The consent policy (GDPR Art. 44–49) as one pure function: case + settings → Decision.

Order of bases (DESIGN.md): a configured Art. 45 adequacy decision or Art. 46 safeguard for the
destination → explicit consent, Art. 49(1)(a) → contract necessity, Art. 49(1)(b), only for
widgets configured for it → otherwise withheld, with the reason recorded.
Visitors outside the restricted origin region are ``not_restricted``; an unknown country counts
as restricted because we cannot show it is not.
"""

from __future__ import annotations

from snapzen.models import (
    ConsentEvidence,
    Decision,
    LegalBasis,
    NameValue,
    Outcome,
    SnapEngageCase,
)
from snapzen.settings import ConsentSettings, LegalMechanism

_SOURCES = ("javascript_variables", "operator_variables", "labels")

# Some sites send "UK"; ISO 3166 says GB.
_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}
# Two letters that name no country: ISO 3166-1 user-assigned codes (AA, QM-QZ, XA-XZ, ZZ; geo-IP
# services send "XX" or "ZZ" for "unknown") and "EU" (geo-IP for "somewhere in Europe"). Taken at
# face value they are "not in the restricted list", i.e. an EU visitor's chat would be exported
# without a basis; they must count as unknown, hence restricted. XK (Kosovo by convention) stays.
_NOT_A_COUNTRY = (
    {"AA", "ZZ", "EU"}
    | {f"Q{c}" for c in "MNOPQRSTUVWXYZ"}
    | {f"X{c}" for c in "ABCDEFGHIJLMNOPQRSTUVWXYZ"}
)


def normalise_country(code: str | None) -> str | None:
    if code is None:
        return None
    cleaned = code.strip().upper()
    if len(cleaned) != 2 or not cleaned.isalpha() or cleaned in _NOT_A_COUNTRY:
        return None
    return _COUNTRY_ALIASES.get(cleaned, cleaned)


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
