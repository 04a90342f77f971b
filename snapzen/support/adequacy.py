"""The two transfer regimes and their adequacy lists, shipped as data (checked December 2026).

UK GDPR and EU GDPR are separate regimes: a UK-established controller answers to UK GDPR, an
EEA-established one to EU GDPR, and a mechanism that satisfies one does not by itself satisfy
the other. Under each regime any recipient outside its area is a restricted transfer: a UK
controller's recipient in Ireland included (covered by the UK adequacy regulations).

Each entry names its instrument, the date it took effect and where the list was read; a
``partial`` entry covers only some recipients in the country (``condition`` says which), so a
recipient relying on it must give the reference that puts it in scope (its certification)
and the date that was checked. Sources (docs/auditing.md, "Where the lists come from"):
ICO "Is the restricted transfer covered by adequacy regulations?"; DPA 2018 Sch. 21 para. 5;
SI 2022/1213 (Korea); SI 2023/1028 (UK-US data bridge); European Commission, "Adequacy
decisions" (commission.europa.eu). Decisions are reviewed and can be struck down: update this
table, not the configuration, when one changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import pycountry

# EU 27, then Iceland, Liechtenstein, Norway.
_EU = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
EEA = frozenset(_EU.split()) | {"IS", "LI", "NO"}
UK = frozenset({"GB"})


class Regime(StrEnum):
    UK_GDPR = "uk_gdpr"
    EU_GDPR = "eu_gdpr"

    @property
    def area(self) -> frozenset[str]:
        return UK if self is Regime.UK_GDPR else EEA

    @property
    def label(self) -> str:
        return "UK GDPR" if self is Regime.UK_GDPR else "EU GDPR"


@dataclass(frozen=True)
class Adequacy:
    instrument: str
    effective: str  # ISO date the finding took effect
    source: str
    condition: str = ""  # non-empty: partial, only recipients meeting this condition

    @property
    def partial(self) -> bool:
        return bool(self.condition)


_ICO = "ICO, international transfers: adequacy regulations (ico.org.uk)"
_SCH21 = "DPA 2018 Sch. 21 para. 5 (adequacy regulations kept from EU decisions)"
_EC = "European Commission, Adequacy decisions (commission.europa.eu)"

EU_ADEQUACY: dict[str, Adequacy] = {
    "AD": Adequacy("Decision 2010/625/EU", "2010-10-19", _EC),
    "AR": Adequacy("Decision 2003/490/EC", "2003-06-30", _EC),
    "CA": Adequacy(
        "Decision 2002/2/EC",
        "2001-12-20",
        _EC,
        "commercial organisations subject to PIPEDA",
    ),
    "FO": Adequacy("Decision 2010/146/EU", "2010-03-05", _EC),
    "GG": Adequacy("Decision 2003/821/EC", "2003-11-21", _EC),
    "IL": Adequacy("Decision 2011/61/EU", "2011-01-31", _EC),
    "IM": Adequacy("Decision 2004/411/EC", "2004-04-28", _EC),
    "JP": Adequacy(
        "Decision (EU) 2019/419",
        "2019-01-23",
        _EC,
        "personal data subject to the APPI (private-sector business operators)",
    ),
    "JE": Adequacy("Decision 2008/393/EC", "2008-05-08", _EC),
    "NZ": Adequacy("Decision 2013/65/EU", "2012-12-19", _EC),
    "KR": Adequacy("Decision (EU) 2022/254", "2021-12-17", _EC),
    "CH": Adequacy("Decision 2000/518/EC", "2000-07-26", _EC),
    "GB": Adequacy(
        "Decision (EU) 2021/1772, renewed December 2025 (to December 2031)",
        "2021-06-28",
        _EC,
    ),
    "UY": Adequacy("Decision 2012/484/EU", "2012-08-21", _EC),
    "US": Adequacy(
        "Decision (EU) 2023/1795 (EU-US Data Privacy Framework)",
        "2023-07-10",
        _EC,
        "organisations listed under the EU-US Data Privacy Framework",
    ),
}

# The EU decisions the UK kept at the end of the transition period (DPA 2018 Sch. 21 para. 5),
# as the EU list words them; Canada's condition is worded as the ICO words it.
_KEPT_FROM_EU = ("CH", "AR", "GG", "IM", "JE", "AD", "IL", "UY", "NZ", "CA", "JP")
_UK_CONDITIONS = {"CA": "recipients subject to PIPEDA (commercial organisations)"}

UK_ADEQUACY: dict[str, Adequacy] = {
    **{
        code: Adequacy("DPA 2018 Sch. 21 para. 5 (EEA states)", "2021-01-01", _SCH21)
        for code in sorted(EEA)
    },
    **{
        code: Adequacy(
            f"{EU_ADEQUACY[code].instrument}, kept by DPA 2018 Sch. 21 para. 5",
            "2021-01-01",
            _ICO,
            _UK_CONDITIONS.get(code, EU_ADEQUACY[code].condition),
        )
        for code in _KEPT_FROM_EU
    },
    "GI": Adequacy("DPA 2018 Sch. 21 para. 5 (Gibraltar)", "2021-01-01", _ICO),
    "KR": Adequacy(
        "The Data Protection (Adequacy) (Republic of Korea) Regulations 2022, SI 2022/1213",
        "2022-12-19",
        _ICO,
    ),
    "US": Adequacy(
        "The Data Protection (Adequacy) (United States of America) Regulations 2023, "
        "SI 2023/1028 (UK-US data bridge)",
        "2023-10-12",
        _ICO,
        "organisations self-certified to the EU-US Data Privacy Framework and its UK Extension",
    ),
}

ADEQUACY: dict[Regime, dict[str, Adequacy]] = {
    Regime.UK_GDPR: UK_ADEQUACY,
    Regime.EU_GDPR: EU_ADEQUACY,
}

# Art. 46 standard clauses valid under each regime. The UK Addendum is appended to the EU
# SCCs, so one contract carrying both covers either regime.
SAFEGUARD_INSTRUMENTS: dict[str, frozenset[Regime]] = {
    "eu_sccs": frozenset({Regime.EU_GDPR}),
    "idta": frozenset({Regime.UK_GDPR}),
    "uk_addendum": frozenset({Regime.UK_GDPR, Regime.EU_GDPR}),
}


def regime_of_controller(country: str) -> Regime | None:
    """The regime a controller established in ``country`` answers to; None outside both (then
    each visitor's location decides, Art. 3(2))."""
    return next((regime for regime in Regime if country in regime.area), None)


def regimes_of_visitor(country: str | None) -> tuple[Regime, ...]:
    """For a controller outside both areas: the regimes a visitor from ``country`` brings
    (Art. 3(2)); an unknown country brings both, because we cannot show it brings neither."""
    if country is None:
        return tuple(Regime)
    regime = regime_of_controller(country)
    return () if regime is None else (regime,)


# Country codes as the policy reads visitors' codes and the settings configured ones. Only codes
# ISO 3166-1 officially assigns are taken at face value, from pycountry's maintained table: two
# letters are not a country. User-assigned codes (AA, QM-QZ, XA-XZ, ZZ; geo-IP services send XX
# or ZZ for "unknown"), "EU", unassigned pairs and non-ASCII letters (full-width "ＤＥ"
# upper-cases to letters too) name no country we can show is outside the restricted area, so
# they are unknown, which the policy treats as restricted.
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
