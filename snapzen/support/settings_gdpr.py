"""The GDPR sections of the settings: `[consent]` (whose consent counts, the evidence that it
was informed, the per-chat contract evidence), `[record]` (the Art. 15 and Art. 30
information), `[transfer]` (where the controller is established, which decides the regime,
every recipient of the chats with the basis each transfer rests on, and the retention of what
snapzen sends) and `[[clients]]` (processor mode: each client a controller with its own
`[transfer]`-like recipients).

A recipient's basis is checked against the regime's shipped adequacy list or standard
clauses at load (snapzen.support.adequacy): a basis that cannot hold is refused with exit 2,
naming the fix, before any chat is sent on it."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from snapzen.support import setting_checks as checks
from snapzen.support.adequacy import (
    ADEQUACY,
    SAFEGUARD_INSTRUMENTS,
    Regime,
    normalise_country,
    regime_of_controller,
    regimes_of_visitor,
)

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
    values = checks.split_list(value)
    if not isinstance(values, list):
        return values  # the type check says what is wrong
    unknown = [v for v in values if v not in CONSENT_SOURCES]
    if unknown or not values:
        raise ValueError(f"must list some of {', '.join(CONSENT_SOURCES)} (got {unknown})")
    return list(dict.fromkeys(values))


ConsentSources = Annotated[list[ConsentSource], NoDecode, BeforeValidator(_sources)]


class ConsentSettings(checks.Section):
    """Whose consent counts and what shows it was informed (Art. 49(1)(a), EDPB 2/2018), and
    the per-chat contract evidence for Art. 49(1)(b). Used only for a recipient whose basis is
    a derogation; a refusal recorded here withholds a chat under any basis."""

    variable: str = "gdpr_consent"
    accepted_values: checks.LowerList = Field(
        default_factory=lambda: ["yes", "true", "1", "accepted", "on"]
    )
    refused_values: checks.LowerList = Field(default_factory=lambda: list(REFUSED_VALUES))
    # Only the visitor's page (javascript_variables) by default: operator variables and labels
    # are set by agents, and an agent's note is not the visitor's consent.
    sources: ConsentSources = Field(default_factory=lambda: list(CONSENT_SOURCES[:1]))
    receipt_variable: str = "gdpr_consent_receipt"
    notice_version_variable: str = "gdpr_notice_version"
    # Art. 49(1)(a) counts only with a receipt id and a notice version listed in ``notices``.
    require_evidence: bool = True
    # notice version -> SHA-256 (hex) of the notice text the visitor was shown.
    notices: Annotated[dict[str, str], NoDecode, checks.jsonish("object")] = Field(
        default_factory=dict
    )
    # The page variable carrying the chat's own contract evidence (an order reference); empty:
    # Art. 49(1)(b) never applies.
    contract_variable: str = ""

    _moved = checks.refuse_moved(MOVED_FROM_CONSENT, "consent.{name} moved to {target}")

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
            raise checks.FieldsProblem(
                ("accepted_values", "refused_values"),
                f"consent values {both} are both accepted and refused",
            )
        return self


class RecordSettings(checks.Section):
    """What an access pack tells the person (Art. 15(1)(a)-(h), 15(2)), and the Art. 30(1)
    record of processing `snapzen ledger report` prints (snapzen.ledger.evidence.art30_record)."""

    controller: str = ""
    contact: str = ""  # the controller's contact details (Art. 30(1)(a)); required by the report
    # The Art. 6 basis of the processing itself (e.g. "Art. 6(1)(f) legitimate interests:
    # keeping a record of support conversations"); required by the report.
    lawful_basis: str = ""
    representative: str = ""  # Art. 27 representative
    dpo: str = ""
    purposes: checks.CommaList = Field(default_factory=lambda: ["customer support chat archiving"])
    data_subjects: checks.CommaList = Field(default_factory=lambda: ["website chat visitors"])
    security_measures: checks.CommaList = Field(default_factory=list)  # Art. 30(1)(g)
    # Recipients beyond transfer.recipients that receive no transfer (processors in the area).
    recipients: checks.CommaList = Field(default_factory=list)
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


class RecipientSystem(StrEnum):
    ZENDESK = "zendesk"  # the one snapzen sends to
    SNAPENGAGE = "snapengage"  # holds every chat before snapzen reads it; recorded, reported
    OTHER = "other"  # recorded and reported, never sent to by snapzen


class TransferBasis(StrEnum):
    ADEQUACY = "adequacy"  # Art. 45 / UK adequacy regulations
    SAFEGUARDS = "safeguards"  # Art. 46 standard clauses
    DEROGATION = "derogation"  # Art. 49: per chat, consent or contract; else withheld


def country_code(value: str) -> str:
    code = normalise_country(value)
    if code is None:
        raise ValueError(f"{value!r} is not an officially assigned ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[str, AfterValidator(country_code)]


class Recipient(checks.Section):
    name: str = Field(min_length=1)
    country: CountryCode
    system: RecipientSystem = RecipientSystem.OTHER
    basis: TransferBasis = TransferBasis.DEROGATION
    # adequacy: the instrument (optional; the shipped list's is recorded) and, for a partial
    # entry (US: the Data Privacy Framework), the certification reference and the date checked.
    # safeguards: the instrument (eu_sccs, idta, uk_addendum), its reference, the date of the
    # transfer risk assessment.
    instrument: str = ""
    certification: str = ""
    checked_on: date | None = None
    reference: str = ""
    tra_date: date | None = None

    @model_validator(mode="after")
    def _evidence(self) -> Recipient:
        if self.basis is TransferBasis.SAFEGUARDS:
            known = ", ".join(SAFEGUARD_INSTRUMENTS)
            if self.instrument.strip().lower() not in SAFEGUARD_INSTRUMENTS:
                raise ValueError(
                    f"recipient {self.name!r}: basis safeguards needs instrument, one of {known}"
                )
            if not self.reference.strip() or self.tra_date is None:
                raise ValueError(
                    f"recipient {self.name!r}: basis safeguards needs reference (the signed "
                    "clauses) and tra_date (the date of the transfer risk assessment)"
                )
            self.instrument = self.instrument.strip().lower()
        return self

    def restricted_under(self, regimes: tuple[Regime, ...]) -> tuple[Regime, ...]:
        """Those of ``regimes`` under which sending to this recipient is a restricted
        transfer: the recipient is outside their area."""
        return tuple(regime for regime in regimes if self.country not in regime.area)

    def mechanism(self, regimes: tuple[Regime, ...]) -> str:
        """What the row records as the mechanism relied on under ``regimes``."""
        if self.basis is TransferBasis.ADEQUACY:
            parts = []
            for regime in regimes:
                entry = ADEQUACY[regime].get(self.country)
                text = f"{regime.label}: {entry.instrument if entry else self.instrument}"
                if entry is not None and entry.partial:
                    text += f" (certification {self.certification}, checked {self.checked_on})"
                parts.append(text)
            return "; ".join(parts)
        if self.basis is TransferBasis.SAFEGUARDS:
            return f"{self.instrument} {self.reference} (TRA {self.tra_date})"
        return ""

    def evidence(self) -> dict[str, Any]:
        """The recipient's basis and evidence, as a decision row records them (the evidence
        fields that are set, dates as ISO text)."""
        given = self.model_dump(mode="json", include=_EVIDENCE, exclude_defaults=True)
        return {"recipient_system": self.system.value, "recipient_basis": self.basis.value, **given}


_EVIDENCE = {"instrument", "certification", "reference", "checked_on", "tra_date"}


def _default_recipients() -> list[Recipient]:
    # The safer basis by default: a derogation, so nothing leaves without each chat's own
    # explicit consent (or contract evidence) until a basis is configured.
    return [Recipient(name="Zendesk, Inc.", country="US", system="zendesk", basis="derogation")]


_BASIS_WORDS = {
    TransferBasis.ADEQUACY: "adequacy",
    TransferBasis.SAFEGUARDS: "standard clauses",
    TransferBasis.DEROGATION: "Art. 49 derogation only (per chat: explicit consent or "
    "contract evidence)",
}

_MOVED_OUT = {
    "recipient": "transfer.recipients (the name of the zendesk recipient)",
    "destination_country": "transfer.recipients (the country of the zendesk recipient)",
    "data_categories": "nothing: data categories are now derived from what each ticket carries",
}


class ControllerTransfers(checks.Section):
    """What decides a controller's transfers: where it is established (which decides the
    regime) and every recipient with its basis. The company's `[transfer]` section, and each
    client's in processor mode (`[[clients]]`), are one of these."""

    # Where the controller is established decides the regime (UK GDPR for GB, EU GDPR for an
    # EEA country, the visitor's location elsewhere): no default, guessing it wrong exports
    # chats without a basis.
    controller_country: str | None = None
    recipients: Annotated[list[Recipient], NoDecode, checks.jsonish("list of recipients")] = Field(
        default_factory=_default_recipients
    )

    @field_validator("controller_country")
    @classmethod
    def _controller(cls, value: str | None) -> str:
        if value is None or not value.strip():
            raise ValueError(
                "is required: the ISO 3166-1 alpha-2 country where the controller is "
                "established (e.g. GB, IE, US); it decides the regime (UK GDPR, EU GDPR) and "
                "which chats are restricted transfers"
            )
        return country_code(value)

    @model_validator(mode="after")
    def _bases_hold(self) -> ControllerTransfers:
        zendesk = [r for r in self.recipients if r.system is RecipientSystem.ZENDESK]
        if len(zendesk) != 1:
            raise checks.FieldsProblem(
                ("recipients",),
                f"{self._recipients_named()} must name exactly one recipient with system = "
                f"'zendesk' (the one snapzen sends to), found {len(zendesk)}",
            )
        if self.controller_country is None:
            return self  # reported by its own validator
        for recipient in self.recipients:
            for regime in self.regimes():
                problem = basis_problem(recipient, regime)
                if problem:
                    raise checks.FieldsProblem(
                        ("recipients", "controller_country"),
                        f"{self._recipients_named()} {recipient.name!r}: {problem}",
                    )
        return self

    def _recipients_named(self) -> str:
        return "transfer.recipients"

    @property
    def regime(self) -> Regime | None:
        """The controller's regime; None for a controller outside the UK and the EEA."""
        return regime_of_controller(self.controller_country or "")

    def regimes(self, visitor: str | None = None) -> tuple[Regime, ...]:
        """The regimes a chat from ``visitor``'s country falls under: the controller's; for a
        controller elsewhere, those the visitor's country brings (Art. 3(2): an unknown
        country both, a country outside both areas none). With no ``visitor``: every regime a
        chat may fall under."""
        regime = self.regime
        return (regime,) if regime is not None else regimes_of_visitor(visitor)

    def describe_recipients(self) -> list[str]:
        """Each recipient, its country and the basis of the transfer to it, as a sentence."""
        out = []
        for recipient in self.recipients:
            under = recipient.restricted_under(self.regimes())
            text = f"{recipient.name} ({recipient.country}, {recipient.system.value}): "
            if not under:
                out.append(text + "no restricted transfer (inside the area)")
                continue
            shown = recipient.mechanism(under)
            out.append(text + _BASIS_WORDS[recipient.basis] + (f", {shown}" if shown else ""))
        return out

    @property
    def zendesk(self) -> Recipient:
        return next(r for r in self.recipients if r.system is RecipientSystem.ZENDESK)


class TransferSettings(ControllerTransfers):
    """`[transfer]`: the company's own transfers, and the retention of what snapzen sends."""

    retention_years: int = Field(default=2, ge=1, le=10)
    # Retention sweep: also empty Zendesk's deleted-tickets bin at once instead of waiting out
    # its 30-day scrub (`snapzen retention sweep --purge/--no-purge` overrides it). On by
    # default: nothing about a person should be kept past its time (issue 27).
    purge_on_expiry: bool = True
    # The retention sweep deletes nothing while the clock reads more than this many days past
    # the latest run the ledger recorded: a clock years ahead would otherwise expire everything.
    clock_margin_days: int = Field(default=30, ge=1, le=3650)

    # Named, not just "extra input": an old config must say where its setting went.
    _moved = checks.refuse_moved(_MOVED_OUT, "transfer.{name} was replaced by {target}")


def basis_problem(recipient: Recipient, regime: Regime) -> str | None:
    """Why ``recipient``'s basis cannot hold under ``regime`` (None when it can, or when the
    recipient is inside the regime's area and so no restricted transfer)."""
    if not recipient.restricted_under((regime,)):
        return None
    if recipient.basis is TransferBasis.ADEQUACY:
        entry = ADEQUACY[regime].get(recipient.country)
        if entry is None:
            return (
                f"{recipient.country} is not on the {regime.label} adequacy list shipped with "
                "snapzen; set basis = 'safeguards' (instrument, reference, tra_date) or "
                "'derogation' (per-chat explicit consent or contract evidence)"
            )
        wanted = recipient.instrument.strip().lower()
        if wanted and wanted not in entry.instrument.lower():
            return (
                f"instrument {recipient.instrument!r} is not the {regime.label} adequacy "
                f"instrument for {recipient.country} ({entry.instrument}); leave it empty or "
                "name that one"
            )
        if entry.partial and (not recipient.certification.strip() or not recipient.checked_on):
            return (
                f"the {regime.label} adequacy for {recipient.country} covers only "
                f"{entry.condition}: set certification (the recipient's listing or reference) "
                "and checked_on (the date you checked it)"
            )
    held = SAFEGUARD_INSTRUMENTS.get(recipient.instrument, frozenset())
    if recipient.basis is TransferBasis.SAFEGUARDS and regime not in held:
        valid = [name for name, under in SAFEGUARD_INSTRUMENTS.items() if regime in under]
        return (
            f"instrument {recipient.instrument} is not a {regime.label} safeguard; use "
            f"{' or '.join(valid)}"
        )
    return None


# `[[clients]]`: processor mode. A live-chat company runs chat on its clients' websites; each
# client is the controller of its widgets' chats (Art. 28), with its own establishment, its own
# recipients and bases, and its own Art. 30(2) record in the company's books. A widget belongs
# to at most one client; a widget of no client is the company's own (controller mode).


class Client(ControllerTransfers):
    """A client: the controller of its widgets' chats, with its own regime and recipients
    (only these are read from it; retention and the sweep follow the company's [transfer])."""

    name: str = Field(min_length=1)
    contact: str = ""  # the controller's contact details (Art. 30(2)(a))
    widgets: checks.WidgetIds = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_widgets(self) -> Client:
        if not self.widgets:
            raise ValueError(f"client {self.name!r} needs its widgets (widget ids)")
        return self

    def _recipients_named(self) -> str:
        return f"client {self.name!r}: recipients"


def check_clients(clients: list[Client], info: ValidationInfo) -> list[Client]:
    names = [client.name for client in clients]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"client names must be unique: {', '.join(twice)}")
    owner: dict[str, str] = {}
    for client in clients:
        for widget in client.widgets:
            if widget in owner:
                raise ValueError(
                    f"widget {widget} belongs to both {owner[widget]!r} and {client.name!r}; "
                    "a widget has at most one controller"
                )
            owner[widget] = client.name
    snapengage = info.data.get("snapengage")
    synced = set(getattr(snapengage, "widgets", None) or [])
    stray = sorted(widget for widget in owner if synced and widget not in synced)
    if stray:
        raise ValueError(
            f"widget(s) {', '.join(stray)} of a client are not in snapengage.widgets, so none "
            "of their chats would be read"
        )
    return clients


def client_of(clients: list[Client], widget: str) -> Client | None:
    return next((client for client in clients if widget in client.widgets), None)
