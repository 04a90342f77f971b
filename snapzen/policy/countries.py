"""Country codes as the consent policy reads them (shared by the policy and its settings)."""

from __future__ import annotations

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
