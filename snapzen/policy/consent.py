"""The consent policy (GDPR Art. 3, 44–49) as one pure function: case + settings → Decision.

What makes a restricted transfer is the exporter, not the visitor (Art. 3, EDPB Guidelines
05/2021): a controller established in the restricted area (EEA + UK by default) transfers every
chat it sends to a destination outside that area, wherever the visitor sat. A controller
established elsewhere is bound only for people in the area (Art. 3(2)), so then the visitor's
country decides, and an unknown or malformed country counts as restricted because we cannot
show it is not. A destination inside the area is no transfer at all.

Order of bases: a configured Art. 45 adequacy decision or Art. 46 safeguard for the
destination → explicit consent, Art. 49(1)(a) → contract necessity, Art. 49(1)(b), only for
widgets configured for it → otherwise withheld, with the reason recorded.
"""

from __future__ import annotations

from snapzen.policy.models import (
    ConsentEvidence,
    Decision,
    LegalBasis,
    NameValue,
    Outcome,
    SnapEngageCase,
)
from snapzen.support.countries import normalise_country
from snapzen.support.settings import ConsentSettings, LegalMechanism

MAX_VALUE_CHARS = 200


def _lookup(case: SnapEngageCase, sources: list[str], variable: str) -> tuple[str, str, str]:
    """(source, name as sent, value) of the first pair named ``variable`` (case-insensitive)
    in the configured sources, in their order; ("", "", "") when none."""
    wanted = variable.strip().lower()
    if not wanted:
        return "", "", ""
    for source in sources:
        pairs: list[NameValue] = getattr(case, source)
        for pair in pairs:
            if (pair.name or "").strip().lower() == wanted:
                return source, pair.name or variable, (pair.value or "")[:MAX_VALUE_CHARS]
    return "", "", ""


def find_consent(case: SnapEngageCase, policy: ConsentSettings) -> ConsentEvidence | None:
    """The consent value from the configured sources only, with its receipt and notice
    version when those variables are configured (looked up in the same sources)."""
    source, name, value = _lookup(case, policy.sources, policy.variable)
    if not source:
        return None
    receipt = _lookup(case, policy.sources, policy.receipt_variable)[2]
    notice = _lookup(case, policy.sources, policy.notice_version_variable)[2]
    return ConsentEvidence(
        source=source,  # one of CONSENT_SOURCES (validated in the settings)
        variable=name,
        value=value,
        receipt=receipt or None,
        notice_version=notice or None,
    )


def restricted(country: str | None, policy: ConsentSettings) -> str | None:
    """Why a chat from ``country`` is NOT a restricted transfer, or None when it is."""
    if policy.destination_in_area:
        return "destination_in_area"
    if policy.controller_in_area:
        return None  # Art. 3(1): every chat, wherever the visitor is
    if country is not None and country not in policy.restricted_countries:
        return "controller_and_visitor_outside_area"
    return None


def decide(case: SnapEngageCase, widget_id: str, policy: ConsentSettings) -> Decision:
    country = normalise_country(case.country_code)
    not_restricted = restricted(country, policy)
    if not_restricted is not None:
        return Decision(
            outcome=Outcome.NOT_RESTRICTED,
            basis=LegalBasis.NOT_RESTRICTED,
            reason=not_restricted,
            origin_country=country,
        )

    safeguard = policy.safeguard()
    if safeguard is not None:
        art45 = safeguard.mechanism is LegalMechanism.ART45
        basis = LegalBasis.ART45 if art45 else LegalBasis.ART46
        return Decision(
            outcome=Outcome.ELIGIBLE,
            basis=basis,
            origin_country=country,
            mechanism_ref=safeguard.ref,
        )

    evidence = find_consent(case, policy)
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
            mechanism_ref=f"contract necessity configured for widget {widget_id}",
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
