"""What an access pack needs before it can be sent (Art. 15(1), 15(2)).

The same fields `ledger report` requires for the Art. 30 record
(snapzen.ledger.evidence.art30_record
.missing_fields: controller, contact, lawful basis, purposes, security measures), plus what
only the person is told: their rights and where to complain. Recipients, safeguards and the
storage period are derived from `[transfer]` when `[record]` leaves them empty."""

from __future__ import annotations

from snapzen.ledger.evidence.art30_record import missing_fields
from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings

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
