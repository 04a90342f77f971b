"""The GDPR sections of the settings: `[consent]` (whose consent counts, the evidence that it
was informed, the per-chat contract evidence) and `[record]` (the Art. 15 and Art. 30
information). Where the controller is and who receives the chats: `[transfer]`
(snapzen.support.settings_transfer)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from snapzen.support.setting_checks import (
    CommaList,
    FieldsProblem,
    LowerList,
    Section,
    jsonish,
    refuse_moved,
)
from snapzen.support.setting_checks import split_list as _split_list

# The one registry of where a chat's consent may be recorded: the SnapEngage case fields read
# for it. The settings' validation (`consent.sources`), the type of ConsentEvidence.source
# (policy.models) and the lookup (policy.consent) all derive from it.
ConsentSource = Literal["javascript_variables", "operator_variables", "labels"]
CONSENT_SOURCES: tuple[ConsentSource, ...] = get_args(ConsentSource)

# Where each transfer key of `[consent]` went (issue 26): an old config fails at load saying so.
MOVED_FROM_CONSENT = {
    "controller_country": "transfer.controller_country",
    "destination_country": "transfer.recipients (the country of the zendesk recipient)",
    "recipient": "transfer.recipients (the name of the zendesk recipient)",
    "safeguards": "transfer.recipients (basis = 'adequacy' or 'safeguards', with its evidence)",
    "mechanism": "transfer.recipients (basis = 'adequacy' or 'safeguards')",
    "mechanism_ref": "transfer.recipients (instrument, certification or reference)",
    "restricted_countries": "transfer.controller_country (the regime: UK GDPR for GB, "
    "EU GDPR for an EEA country, the visitor's location elsewhere)",
    "contract_widgets": "consent.contract_variable (each chat's own contract evidence, never "
    "a whole widget)",
}

# A recorded refusal: withheld whatever other basis exists (EDPB Guidelines 05/2020).
REFUSED_VALUES = ("no", "false", "0", "declined", "refused", "off", "rejected", "denied")

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sources(value: Any) -> Any:
    """Checked against the registry before the Literal type is: the problem is then about
    ``consent.sources`` as the user wrote it and names the unknown sources (the type's own
    error would name an item, ``consent.sources.0``, and no source)."""
    values = _split_list(value)
    if not isinstance(values, list):
        return values  # the type check says what is wrong
    unknown = [v for v in values if v not in CONSENT_SOURCES]
    if unknown or not values:
        raise ValueError(f"must list some of {', '.join(CONSENT_SOURCES)} (got {unknown})")
    return list(dict.fromkeys(values))


ConsentSources = Annotated[list[ConsentSource], NoDecode, BeforeValidator(_sources)]


class ConsentSettings(Section):
    """Whose consent counts and what shows it was informed (Art. 49(1)(a), EDPB 2/2018), and
    the per-chat contract evidence for Art. 49(1)(b). Used only for a recipient whose basis is
    a derogation; a refusal recorded here withholds a chat under any basis."""

    variable: str = "gdpr_consent"
    accepted_values: LowerList = Field(
        default_factory=lambda: ["yes", "true", "1", "accepted", "on"]
    )
    refused_values: LowerList = Field(default_factory=lambda: list(REFUSED_VALUES))
    # Only the visitor's page (javascript_variables) by default: operator variables and labels
    # are set by agents, and an agent's note is not the visitor's consent.
    sources: ConsentSources = Field(default_factory=lambda: list(CONSENT_SOURCES[:1]))
    receipt_variable: str = "gdpr_consent_receipt"
    notice_version_variable: str = "gdpr_notice_version"
    # Art. 49(1)(a) counts only with a receipt id and a notice version listed in ``notices``.
    require_evidence: bool = True
    # notice version -> SHA-256 (hex) of the notice text the visitor was shown.
    notices: Annotated[dict[str, str], NoDecode, jsonish("object")] = Field(default_factory=dict)
    # The page variable carrying the chat's own contract evidence (an order reference); empty:
    # Art. 49(1)(b) never applies.
    contract_variable: str = ""

    _moved = refuse_moved(MOVED_FROM_CONSENT, "consent.{name} moved to {target}")

    @field_validator("notices")
    @classmethod
    def _hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for version, digest in value.items():
            if not _SHA256.fullmatch(digest.strip().lower()):
                raise ValueError(
                    f"notice {version!r}: {digest!r} is not a SHA-256 hex digest of the notice "
                    "text (sha256sum notice.txt)"
                )
        return {version: digest.strip().lower() for version, digest in value.items()}

    @model_validator(mode="after")
    def _values_apart(self) -> ConsentSettings:
        both = sorted(set(self.accepted_values) & set(self.refused_values))
        if both:
            raise FieldsProblem(
                ("accepted_values", "refused_values"),
                f"consent values {both} are both accepted and refused",
            )
        return self


class RecordSettings(Section):
    """What an access pack tells the person (Art. 15(1)(a)-(h), 15(2)), and the Art. 30(1)
    record of processing `snapzen ledger report` prints (snapzen.ledger.evidence.art30_record)."""

    controller: str = ""
    contact: str = ""  # the controller's contact details (Art. 30(1)(a)); required by the report
    # The Art. 6 basis of the processing itself (e.g. "Art. 6(1)(f) legitimate interests:
    # keeping a record of support conversations"); required by the report.
    lawful_basis: str = ""
    representative: str = ""  # Art. 27 representative
    dpo: str = ""
    purposes: CommaList = Field(default_factory=lambda: ["customer support chat archiving"])
    data_subjects: CommaList = Field(default_factory=lambda: ["website chat visitors"])
    security_measures: CommaList = Field(default_factory=list)  # Art. 30(1)(g)
    # Recipients beyond transfer.recipients that receive no transfer (processors in the area).
    recipients: CommaList = Field(default_factory=list)
    retention: str = ""  # empty: described from transfer.retention_years
    # How long the ledger itself (a processing activity of its own) is kept; empty: described.
    ledger_retention: str = ""
    # Years the ledger keeps the evidence of answering each person's request (its receipt,
    # clock, answer, erasure, holds, Art. 19 notices), counted from the request's last step:
    # as long as a complaint or a claim about that answer could be brought. Default 6: the
    # limitation period of a compensation claim in England and Wales (Limitation Act 1980),
    # longer than the common EU ones (3 years in Germany, 5 in France); then the retention
    # sweep forgets it (docs/data-subject-rights.md).
    request_evidence_years: int = Field(default=6, ge=1, le=30)
    safeguards: str = ""  # empty: described from transfer.recipients
    source: str = "the website chat (SnapEngage) you used"
    rights: str = (
        "You may ask for rectification or erasure, restriction of processing, or object to "
        "it; where processing rests on consent you may withdraw it at any time."
    )
    complaint: str = "You may lodge a complaint with a supervisory authority."
    automated_decisions: str = "No automated decision-making or profiling is applied."
