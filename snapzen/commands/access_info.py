"""The Art. 15(1)(a)-(h) and 15(2) information of an access pack, from `[record]` and
`[transfer]`: who the controller is, why, every recipient actually used (SnapEngage included,
CJEU C-154/21) with its country and basis, how long, the person's rights and the regulator.

Before a pack can be sent, the fields `ledger report` requires for the Art. 30 record
(snapzen.ledger.evidence.art30_record.missing_fields: controller, contact, lawful basis,
purposes, security measures) must be filled in, and what only the person is told: their
rights and where to complain. Recipients, safeguards and the storage period are derived from
`[transfer]` when `[record]` leaves them empty."""

from __future__ import annotations

from typing import Any

from snapzen.ledger.evidence.art30_record import missing_fields, retention_statement
from snapzen.policy.transform import SENT_CATEGORIES
from snapzen.support.adequacy import Regime
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings
from snapzen.support.settings_gdpr import RecipientSystem, TransferBasis

# Where the person can complain, by the controller's regime (Art. 15(1)(f), Art. 77).
REGULATORS = {
    Regime.UK_GDPR: "the Information Commissioner's Office (ICO), ico.org.uk, 0303 123 1113",
    Regime.EU_GDPR: "the data protection authority of the EU or EEA country where you live, "
    "work, or where you think the problem happened (edpb.europa.eu lists them)",
}
SNAPENGAGE = "SnapEngage"
_BASES = {TransferBasis.ADEQUACY: "art45", TransferBasis.SAFEGUARDS: "art46"}


def _recipients(settings: Settings) -> list[dict[str, Any]]:
    transfer = settings.transfer
    out: list[dict[str, Any]] = []
    for recipient in transfer.recipients:
        under = recipient.restricted_under(transfer.regimes_possible)
        # Art. 49: per chat, consent or contract, as each transfer row records.
        basis = _BASES.get(recipient.basis, "art49") if under else "not_restricted"
        out.append({
            "name": recipient.name,
            "system": recipient.system.value,
            "country": recipient.country,
            "basis": basis,
            "mechanism": recipient.mechanism(under) if under else "",
        })  # fmt: skip
    if not any(r["system"] == RecipientSystem.SNAPENGAGE.value for r in out):
        # The chat service always holds the chat first, whether or not it is configured as a
        # recipient with its country.
        out.append({"name": SNAPENGAGE, "system": RecipientSystem.SNAPENGAGE.value,
                    "country": None, "basis": None, "mechanism": ""})  # fmt: skip
    for name in settings.record.recipients:
        out.append({"name": name, "system": "other", "country": None, "basis": None,
                    "mechanism": ""})  # fmt: skip
    return out


def information(settings: Settings) -> dict[str, Any]:
    """Art. 15(1)(a)-(h) and 15(2), from [record], [consent] and [transfer]."""
    record, transfer = settings.record, settings.transfer
    detail = _recipients(settings)
    regime = transfer.regime
    return {
        "controller": record.controller,
        "contact": record.contact,
        "dpo": record.dpo,
        "purposes": record.purposes,  # (a)
        "lawful_basis": record.lawful_basis,
        "data_categories": list(SENT_CATEGORIES),  # (b)
        "recipients": [r["name"] for r in detail],  # (c)
        "recipients_detail": detail,
        "third_country": transfer.zendesk.country,
        "third_countries": sorted({r.country for r in transfer.recipients}),
        "safeguards_written": record.safeguards,
        "safeguards": record.safeguards or "; ".join(transfer.describe_recipients()),  # 15(2)
        "retention": retention_statement(record, transfer),  # (d), as `ledger report` (f)
        "snapengage_retention_days": settings.snapengage.retention_days,
        "rights": record.rights,  # (e)
        "complaint": record.complaint,  # (f)
        "regulator": REGULATORS[regime] if regime else " or ".join(REGULATORS.values()),
        "source": record.source,  # (g)
        "automated_decisions": record.automated_decisions,  # (h)
    }


# Art. 15(1)(e), (f): empty them and the person does not learn what they can do.
PERSON_ONLY = (
    ("rights", "record.rights", "SNAPZEN_RECORD__RIGHTS"),
    ("complaint", "record.complaint", "SNAPZEN_RECORD__COMPLAINT"),
)


def missing_for_access(settings: Settings) -> list[str]:
    """The empty fields an access pack needs, each with the variable that sets it."""
    record = settings.record
    missing = missing_fields(record)
    missing += [f"{name} ({env})" for attr, name, env in PERSON_ONLY
                if not str(getattr(record, attr)).strip()]  # fmt: skip
    return missing


def require_complete(settings: Settings) -> None:
    """ConfigError (exit 2) naming every empty field: nothing is written or recorded."""
    missing = missing_for_access(settings)
    if missing:
        raise ConfigError(
            "ledger access: the pack would not tell the person what Art. 15 requires; fill "
            "in: " + "; ".join(missing)
        )
