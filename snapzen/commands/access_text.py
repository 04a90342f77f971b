"""The person's copy of an access pack (subject.html): the helpers of its sentences, and the page.

The ledger speaks in codes (``art49_1a``, ``synced``, ``consent_refused``); subject.json keeps
them, the page the person reads says what they mean, in the sentences of the Jinja2 template
``templates/access_words.html`` (every code the ledger can hold has its sentence there:
tests/unit/commands/test_access_text.py collects the codes from the source and fails when one
is missing). Here: dates, countries and safeguards by name, values as text. No I/O.

The page is one static HTML page, no script, no external asset, rendered from the Jinja2
template ``templates/access_pack.html``. It prints on A4: ``@page`` sets the paper, tables
take the page's width with no fixed column widths, and long words (URLs, user agents) wrap.
Autoescape is on: everything from the pack is escaped (transcripts are whatever was typed
into a chat).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pycountry

from snapzen.commands.templates import TEMPLATES

# Where a recipient is, by pycountry's names; these read with an article ("the United States").
_THE = {"AE", "BS", "DO", "GB", "GM", "IM", "MV", "NL", "PH", "US"}

_SAFEGUARD_NAMES = {
    "eu_sccs": "the European Commission's standard contractual clauses",
    "idta": "the UK International Data Transfer Agreement",
    "uk_addendum": "the UK Addendum to the European Commission's standard contractual clauses",
}
# Reasons built from a pattern: ``type_<kind>_not_synced`` and ``dismissed: <text>``.
TYPE_REASON = re.compile(r"^type_[a-z0-9_]*_not_synced$")
_REGIME_PREFIX = re.compile(r"^(UK GDPR|EU GDPR):\s*")
_CHECKED = re.compile(r"\s*\(certification [^()]*\)")
_NAMED = re.compile(r"\(([^()]+)\)\s*$")


def day(value: Any) -> str:
    """``2027-01-24`` (or a timestamp) -> ``24 January 2027``; anything else as it is."""
    text = str(value or "")
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{parsed.day} {parsed.strftime('%B')} {parsed.year}"


def moment(value: Any) -> str:
    """``2026-11-25T08:00:00Z`` -> ``25 November 2026 at 08:00 UTC``."""
    text = str(value or "")
    clock = text[11:16] if len(text) >= 16 and text[10] == "T" else ""
    return day(text) + (f" at {clock} UTC" if clock else "")


def country_name(code: str | None) -> str:
    if not code:
        return "a country we could not determine"
    found = pycountry.countries.get(alpha_2=code.upper())
    if found is None:
        return f"the country with code {code.upper()}"
    name = str(getattr(found, "common_name", found.name))
    return f"the {name}" if found.alpha_2 in _THE else name


def instrument_name(mechanism: str | None) -> str:
    """``UK GDPR: The ... Regulations 2023, SI 2023/1028 (UK-US data bridge) (certification
    X, checked D)`` -> ``the UK-US data bridge``; ``idta REF (TRA D)`` -> the IDTA's name."""
    text = (mechanism or "").split(";")[0].strip()
    first = text.split(" ", 1)[0].lower()
    if first in _SAFEGUARD_NAMES:
        return _SAFEGUARD_NAMES[first]
    text = _CHECKED.sub("", _REGIME_PREFIX.sub("", text)).strip()
    named = _NAMED.search(text)
    if named:
        return f"the {named.group(1)}"
    return text or "the applicable safeguard"


def reason_code(reason: str | None) -> str:
    """A decision's reason as access_words.html names it: the patterned ones by pattern."""
    text = (reason or "").strip()
    if TYPE_REASON.match(text):
        return "type_*_not_synced"
    return "dismissed: *" if text.startswith("dismissed:") else text


TEMPLATES.globals.update(
    {f.__name__: f for f in (day, moment, country_name, instrument_name, reason_code)},
)
# The sentences as a module: ``words().event(row)``, ``words().STATUSES`` (tests read them).
words = TEMPLATES.get_template("access_words.html").make_module


def render_html(pack: dict[str, Any]) -> str:
    return TEMPLATES.get_template("access_pack.html").render(
        pack=pack,
        info=pack.get("information") or {},
        parties=pack.get("controllers") or [],
        ledger=pack.get("ledger") or [],
    )
