"""Country codes as the consent policy reads them: a pure table (pycountry's), shared by the
policy, which classifies visitors' codes, and the settings, which check configured ones.

Only codes ISO 3166-1 officially assigns are taken at face value, from pycountry's maintained
table: two letters are not a country. User-assigned codes (AA, QM-QZ, XA-XZ, ZZ; geo-IP
services send XX or ZZ for "unknown"), "EU", unassigned pairs and non-ASCII letters (full-width
"ＤＥ" upper-cases to letters too) name no country we can show is outside the restricted area,
so they are unknown, which the policy treats as restricted.
"""

from __future__ import annotations

from functools import cache

import pycountry

# Some sites send "UK" and Greece's EU code "EL"; ISO 3166 says GB and GR. IC (Canary Islands)
# and EA (Ceuta, Melilla) are exceptionally reserved codes of Spanish territory in the EU, FX
# (metropolitan France) of France: read at face value they looked "not restricted".
_ALIASES = {"UK": "GB", "EL": "GR", "IC": "ES", "EA": "ES", "FX": "FR"}


@cache
def _assigned() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


def normalise_country(code: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code ``code`` stands for, or None when it names no country."""
    if code is None:
        return None
    cleaned = code.strip()
    if len(cleaned) != 2 or not cleaned.isascii() or not cleaned.isalpha():
        return None
    cleaned = _ALIASES.get(cleaned.upper(), cleaned.upper())
    return cleaned if cleaned in _assigned() else None
