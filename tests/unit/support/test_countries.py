"""Only officially assigned ISO 3166-1 codes are countries; EU territories' reserved codes
map into the EU; everything else is unknown, hence restricted (a chat without consent from
such a visitor is withheld, not sent tagged gdpr_not_restricted)."""

from __future__ import annotations

import pytest

from snapzen.policy.consent import decide
from snapzen.policy.models import Outcome, parse_case
from snapzen.support.adequacy import normalise_country
from snapzen.support.settings import ConsentSettings, TransferSettings
from tests.fakes import make_case, recent


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("de", "DE"),
        (" US ", "US"),
        ("UK", "GB"),
        ("EL", "GR"),
        ("IC", "ES"),  # Canary Islands
        ("EA", "ES"),  # Ceuta, Melilla
        ("FX", "FR"),  # metropolitan France
        ("OO", None),  # unassigned
        ("ZY", None),  # unassigned
        ("XK", None),  # user-assigned (Kosovo by convention)
        ("QM", None),  # user-assigned
        ("ＤＥ", None),  # full-width letters
        ("DÉ", None),
        ("D1", None),
        ("DEU", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_country(code: str | None, expected: str | None) -> None:
    assert normalise_country(code) == expected


@pytest.mark.parametrize("code", ["IC", "EA", "FX", "OO", "ZY", "ＤＥ"])
def test_such_visitors_without_consent_are_withheld(code: str) -> None:
    """A controller outside the area (so the visitor's country decides): none of these may
    pass as a country outside the EEA."""
    case = parse_case(make_case("c1", started=recent(), country=code, consent=None))
    policy = TransferSettings(controller_country="US")
    decision = decide(case, ConsentSettings(), policy)
    assert (decision.outcome, decision.reason) == (Outcome.WITHHELD, "no_consent_recorded")


def test_settings_refuse_codes_that_name_no_country() -> None:
    with pytest.raises(ValueError, match="officially assigned"):
        TransferSettings(controller_country="XK")
    with pytest.raises(ValueError, match="officially assigned"):
        TransferSettings(
            controller_country="GB",
            recipients=[{"name": "Z", "country": "ZZ", "system": "zendesk"}],  # type: ignore[list-item]
        )
