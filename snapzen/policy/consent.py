"""The transfer decision (UK GDPR and EU GDPR Art. 3, 44–49) as one pure function:
case + settings → Decision. docs/auditing.md has the same table for a DPO to check.

1. The regime: the controller's establishment picks it (UK GDPR for GB, EU GDPR for an EEA
   country); for a controller elsewhere the visitor's country decides (Art. 3(2)), an unknown
   or malformed country bringing both regimes because we cannot show it brings neither, and
   a visitor outside both areas none (not restricted).
2. Under each regime any recipient outside its area is a restricted transfer (a UK
   controller's recipient in Ireland too, covered by the UK adequacy regulations); a
   recipient inside every applicable area is no transfer.
3. A recorded refusal withholds the chat whatever else applies (EDPB 05/2020: a refused
   consent cannot be replaced by another basis).
4. The recipient's adequacy or safeguards basis (checked against the shipped lists at load).
5. A derogation only when the recipient has neither: explicit consent, Art. 49(1)(a), with its
   receipt and a listed notice version when ``consent.require_evidence``; then contract
   necessity, Art. 49(1)(b), only with the chat's own contract evidence; else withheld.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snapzen.policy.models import (
    ConsentEvidence,
    Decision,
    LegalBasis,
    NameValue,
    Outcome,
    SnapEngageCase,
)
from snapzen.support.adequacy import Regime, normalise_country
from snapzen.support.settings import ConsentSettings
from snapzen.support.settings_gdpr import ConsentSource, ControllerTransfers, TransferBasis

MAX_VALUE_CHARS = 200


def _lookup(
    case: SnapEngageCase, sources: Sequence[ConsentSource], variable: str
) -> tuple[ConsentSource | None, str, str]:
    """(source, name as sent, value) of the first pair named ``variable`` (case-insensitive)
    in the configured sources, in their order; (None, "", "") when none."""
    wanted = variable.strip().lower()
    if not wanted:
        return None, "", ""
    for source in sources:
        pairs: list[NameValue] = getattr(case, source)
        for pair in pairs:
            if (pair.name or "").strip().lower() == wanted:
                return source, pair.name or variable, (pair.value or "")[:MAX_VALUE_CHARS]
    return None, "", ""


def find_consent(case: SnapEngageCase, policy: ConsentSettings) -> ConsentEvidence | None:
    """The consent value from the configured sources only, with its receipt and notice
    version (looked up in the same sources) and the notice's listed hash."""
    source, name, value = _lookup(case, policy.sources, policy.variable)
    if not source:
        return None
    receipt = _lookup(case, policy.sources, policy.receipt_variable)[2].strip()
    notice = _lookup(case, policy.sources, policy.notice_version_variable)[2].strip()
    return ConsentEvidence(
        source=source,
        variable=name,
        value=value,
        receipt=receipt or None,
        notice_version=notice or None,
        notice_sha256=policy.notices.get(notice) if notice else None,
    )


def regime_name(applied: tuple[Regime, ...]) -> str | None:
    return "+".join(regime.value for regime in applied) or None


def _consent_problem(evidence: ConsentEvidence, policy: ConsentSettings) -> str | None:
    """Why an accepted consent value does not count as informed explicit consent."""
    if evidence.notice_version and policy.notices and evidence.notice_sha256 is None:
        return "notice_version_not_listed"
    if not policy.require_evidence:
        return None
    if not evidence.receipt or not evidence.notice_version:
        return "consent_without_evidence"
    if evidence.notice_sha256 is None:
        return "notice_version_not_listed"
    return None


def decide(
    case: SnapEngageCase, consent: ConsentSettings, transfer: ControllerTransfers
) -> Decision:
    """The decision on ``case`` under ``transfer`` (its widget's controller's: the caller picks
    it and records the widget)."""
    country = normalise_country(case.country_code)
    applied = transfer.regimes(country)
    recipient = transfer.zendesk
    restricted_under = recipient.restricted_under(applied)
    if not restricted_under:  # no regime applies, or the recipient is inside its area
        return Decision(
            outcome=Outcome.NOT_RESTRICTED,
            basis=LegalBasis.NOT_RESTRICTED,
            reason="destination_in_area" if applied else "controller_and_visitor_outside_area",
            origin_country=country,
            regime=regime_name(applied),
        )
    facts = recipient.evidence()
    evidence = find_consent(case, consent)

    def decided(outcome: Outcome, **details: Any) -> Decision:
        return Decision(
            outcome=outcome,
            evidence=evidence,
            facts=facts,
            origin_country=country,
            regime=regime_name(restricted_under),
            **details,
        )

    if evidence is not None and evidence.value.strip().lower() in consent.refused_values:
        return decided(Outcome.WITHHELD, reason="consent_refused")
    if recipient.basis is not TransferBasis.DEROGATION:
        adequacy = recipient.basis is TransferBasis.ADEQUACY
        return decided(
            Outcome.ELIGIBLE,
            basis=LegalBasis.ART45 if adequacy else LegalBasis.ART46,
            mechanism_ref=recipient.mechanism(restricted_under),
        )
    problem = None
    # Case-insensitive but otherwise exact: " yes " or "yes please" is not clear consent.
    if evidence is not None and evidence.value.lower() in consent.accepted_values:
        problem = _consent_problem(evidence, consent)
        if problem is None:
            if evidence.notice_sha256:
                facts["notice_sha256"] = evidence.notice_sha256
            return decided(Outcome.ELIGIBLE, basis=LegalBasis.ART49_1A)
    contract = _lookup(case, consent.sources, consent.contract_variable)
    if contract[0] and contract[2].strip():
        facts["contract_variable"] = contract[1]
        facts["contract_reference"] = contract[2].strip()
        return decided(
            Outcome.ELIGIBLE,
            basis=LegalBasis.ART49_1B,
            mechanism_ref=f"contract evidence {contract[1]}={contract[2].strip()}",
        )
    if problem is None:
        problem = "no_consent_recorded" if evidence is None else "consent_value_not_accepted"
    return decided(Outcome.WITHHELD, reason=problem)
