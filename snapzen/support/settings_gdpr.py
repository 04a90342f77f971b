"""The GDPR sections of the settings: `[consent]` (where the controller is, what is restricted,
whose consent counts, the safeguards per destination) and `[record]` (the Art. 15 and Art. 30
information). Country codes are checked against snapzen.support.countries, as visitors' are."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from snapzen.support import setting_checks
from snapzen.support.countries import normalise_country
from snapzen.support.settings_base import CommaList, Section, split_list

# EEA (EU 27 + Iceland, Liechtenstein, Norway) and the United Kingdom.
EEA_AND_UK = [
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
    "IS",
    "LI",
    "NO",
    "GB",
]


class LegalMechanism(StrEnum):
    ART45 = "art45"
    ART46 = "art46"


CONSENT_SOURCES = ("javascript_variables", "operator_variables", "labels")


class Safeguard(Section):
    """An Art. 45 adequacy decision or Art. 46 safeguard covering one destination country."""

    mechanism: LegalMechanism
    ref: str = Field(min_length=1)


def _country(value: str, what: str) -> str:
    code = normalise_country(value)
    if code is None:
        raise ValueError(f"{value!r} is not an officially assigned ISO 3166-1 alpha-2 {what}")
    return code


class ConsentSettings(Section):
    # Where the controller is established decides what is a transfer (Art. 3, EDPB Guidelines
    # 05/2021): no default, because guessing it wrong exports chats without a basis.
    controller_country: str | None = None
    destination_country: str = "US"
    recipient: str = Field(default="Zendesk, Inc.", min_length=1)
    variable: str = "gdpr_consent"
    accepted_values: CommaList = Field(
        default_factory=lambda: ["yes", "true", "1", "accepted", "on"]
    )
    # Only the visitor's page (javascript_variables) by default: operator variables and labels
    # are set by agents, and an agent's note is not the visitor's consent.
    sources: CommaList = Field(default_factory=lambda: ["javascript_variables"])
    receipt_variable: str = ""
    notice_version_variable: str = ""
    restricted_countries: CommaList = Field(default_factory=lambda: list(EEA_AND_UK))
    contract_widgets: CommaList = Field(default_factory=list)
    safeguards: dict[str, Safeguard] = Field(default_factory=dict)
    # Kept from before per-destination safeguards: applies to ``destination_country``.
    mechanism: LegalMechanism | None = None
    mechanism_ref: str = ""

    _split = field_validator(
        "accepted_values", "restricted_countries", "contract_widgets", "sources", mode="before"
    )(split_list)
    _widget_ids = field_validator("contract_widgets")(setting_checks.check_widgets)

    @field_validator("controller_country")
    @classmethod
    def _controller(cls, value: str | None) -> str:
        if value is None or not value.strip():
            raise ValueError(
                "is required: the ISO 3166-1 alpha-2 country where the controller is "
                "established (e.g. GB, IE, US); it decides which chats are restricted transfers"
            )
        return _country(value, "country code")

    @field_validator("destination_country")
    @classmethod
    def _destination(cls, value: str) -> str:
        return _country(value, "country code")

    @field_validator("safeguards")
    @classmethod
    def _safeguard_countries(cls, value: dict[str, Safeguard]) -> dict[str, Safeguard]:
        return {_country(code, "country code"): safeguard for code, safeguard in value.items()}

    @field_validator("sources")
    @classmethod
    def _sources(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in CONSENT_SOURCES]
        if unknown or not values:
            raise ValueError(f"must list some of {', '.join(CONSENT_SOURCES)} (got {unknown})")
        return list(dict.fromkeys(values))

    @field_validator("accepted_values")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values]

    @field_validator("restricted_countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        # Normalised exactly as visitors' codes are (UK → GB, EL → GR): otherwise "UK" here
        # would never match a visitor and those chats would leave without a basis.
        if not values:
            raise ValueError("must list at least one country (an empty list restricts nobody)")
        return [_country(value, "country code") for value in values]

    @model_validator(mode="after")
    def _mechanism_needs_ref(self) -> ConsentSettings:
        if self.mechanism is not None and not self.mechanism_ref.strip():
            raise ValueError(
                "consent.mechanism_ref must name the adequacy decision or safeguard"
                " (e.g. 'EU-US DPF' or 'SCC 2021/914 module 2') when consent.mechanism is set"
            )
        return self

    def safeguard(self) -> Safeguard | None:
        """The Art. 45/46 basis configured for the destination, if any."""
        found = self.safeguards.get(self.destination_country)
        if found is None and self.mechanism is not None:
            found = Safeguard(mechanism=self.mechanism, ref=self.mechanism_ref)
        return found

    @property
    def controller_in_area(self) -> bool:
        return self.controller_country in self.restricted_countries

    @property
    def destination_in_area(self) -> bool:
        return self.destination_country in self.restricted_countries


class RecordSettings(Section):
    """What an access pack tells the person (Art. 15(1)(a)-(h), 15(2)), and the Art. 30(1)
    record of processing `snapzen ledger report` prints (snapzen.ledger.record)."""

    controller: str = ""
    representative: str = ""  # Art. 27 representative
    dpo: str = ""
    purposes: CommaList = Field(default_factory=lambda: ["customer support chat archiving"])
    data_subjects: CommaList = Field(default_factory=lambda: ["website chat visitors"])
    security_measures: CommaList = Field(default_factory=list)  # Art. 30(1)(g)
    # Recipients beyond consent.recipient (processors, sub-processors).
    recipients: CommaList = Field(default_factory=list)
    retention: str = ""  # empty: described from transfer.retention_years
    safeguards: str = ""  # empty: consent.mechanism_ref when set
    source: str = "the website chat (SnapEngage) you used"
    rights: str = (
        "You may ask for rectification or erasure, restriction of processing, or object to "
        "it; where processing rests on consent you may withdraw it at any time."
    )
    complaint: str = "You may lodge a complaint with a supervisory authority."
    automated_decisions: str = "No automated decision-making or profiling is applied."

    _split = field_validator(
        "purposes", "recipients", "data_subjects", "security_measures", mode="before"
    )(split_list)
