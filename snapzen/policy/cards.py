"""Payment card numbers: what issuers define, and the forms a person types them in.

Payment card numbers as issuers define them: the IIN prefix table with each issuer's
lengths. Pure functions; snapzen.policy.redaction finds the numbers in text with them (and
checks Luhn with python-stdnum).

The forms a card number takes when typed by a person, reduced to the one the card rule reads.

Visitors type cards with NBSP, tabs, thin spaces, en dashes, doubled spaces, full-width
digits, brackets (``[4111][1111]…``), dots or slashes between the groups, or glued to a label
(``cc=4111…x``). ``card_view`` gives the card rule a normalised *view* of a text (NFKC per
character, every separator run between two digits folded into one space or hyphen) together
with, for each view character, the index of the original character it came from; spans found
in the view are mapped back so the original characters are what gets redacted.

``grouped_spans`` and ``glued_spans`` return digit spans of the view for the two forms the
run rule deliberately does not take (dots/slashes are decimals, dates and IP addresses there;
letters are codes there); the card rule validates them (issuer, length, Luhn) like any other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

# Issuer (IIN) prefix table. Source: the project brief, which follows the
# "Payment card number" IIN table on Wikipedia (ISO/IEC 7812-1 based, 2024).
# Each row: issuer, lowest prefix, highest prefix (same number of digits),
# allowed total lengths.
#
# Overlaps: Discover 622126-622925 lies inside UnionPay 62, and Discover 6011,
# 644-649 and 65 as well as UnionPay 62 lie inside the broad Maestro 56-69.
# card_issuer() resolves them by trying longer (more specific) prefixes first
# and returning the first row whose prefix *and* length both fit, so e.g. a
# 16-digit 6011... is "discover" while a 12-digit 6011... falls through to
# "maestro". For detection only "some row fits" matters.
#
# Deliberately not covered (known gaps): Mir 2200-2204, RuPay, Verve, Troy,
# and other national schemes outside the brief's table.
_RANGE_16_19 = frozenset(range(16, 20))
_IIN_ROWS: tuple[tuple[str, str, str, frozenset[int]], ...] = (
    ("visa", "4", "4", frozenset({13, 16, 19})),
    ("mastercard", "51", "55", frozenset({16})),
    ("mastercard", "2221", "2720", frozenset({16})),
    ("amex", "34", "34", frozenset({15})),
    ("amex", "37", "37", frozenset({15})),
    ("discover", "6011", "6011", _RANGE_16_19),
    ("discover", "644", "649", _RANGE_16_19),
    ("discover", "65", "65", _RANGE_16_19),
    ("discover", "622126", "622925", _RANGE_16_19),
    ("jcb", "3528", "3589", _RANGE_16_19),
    ("diners", "300", "305", frozenset(range(14, 20))),
    ("diners", "36", "36", frozenset(range(14, 20))),
    ("diners", "38", "39", frozenset(range(14, 20))),
    ("unionpay", "62", "62", _RANGE_16_19),
    ("maestro", "50", "50", frozenset(range(12, 20))),
    ("maestro", "56", "69", frozenset(range(12, 20))),
)
# Most specific prefix first; sorted() is stable so table order breaks ties.
_IIN_TABLE = tuple(sorted(_IIN_ROWS, key=lambda row: -len(row[1])))
CARD_MIN_DIGITS = 12
CARD_MAX_DIGITS = 19


def card_issuer(digits: str) -> str | None:
    """Return the issuer whose prefix and length rules fit ``digits``, else None.

    Only prefix and length are checked here, not Luhn.
    """
    if not (digits.isascii() and digits.isdigit()):
        return None
    length = len(digits)
    for issuer, low, high, lengths in _IIN_TABLE:
        # Equal-width digit strings compare like the integers they spell.
        if length in lengths and low <= digits[: len(low)] <= high:
            return issuer
    return None


@lru_cache(maxsize=4096)
def card_lengths(prefix: str) -> frozenset[int]:
    """All lengths some issuer allows for numbers starting with ``prefix``.

    ``prefix`` has 6 digits (the longest IIN in the table), so a number d of
    12-19 digits satisfies ``card_issuer(d) is not None`` exactly when
    ``len(d) in card_lengths(d[:6])``. Computing it once per candidate start
    keeps the scan cheap on long digit/space runs.
    """
    return frozenset().union(
        *(allowed for _, low, high, allowed in _IIN_TABLE if low <= prefix[: len(low)] <= high)
    )


Span = tuple[int, int]

# Up to this many separator characters between two digits still join them ("4111 - 1111").
_MAX_SEPARATORS = 3
# A text can hold a card only if 12 (Unicode) digits follow each other with at most
# _MAX_SEPARATORS other characters between neighbours: the cheap test before any view is built.
LOOSE_PREFILTER_RE = re.compile(r"\d(?:\D{0,3}\d){11}")


def _fold(char: str) -> str:
    """NFKC of one character when that is one character (full-width digits), else itself.

    Only a decimal digit (``isdecimal``: full-width digits) may fold to a digit: a
    superscript, subscript or circled figure ("²", "₃", "①") is a footnote or an exponent, not
    part of a number a person typed, so it stays as it is and never extends a card."""
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) != 1 or (folded.isdigit() and not char.isdecimal()):
        return char
    return folded


# Separators that may stand between the groups of a card: any whitespace (NBSP, tab, thin
# and ideographic spaces), hyphens and dashes, the minus sign, brackets.
_SEPARATOR = r"[\s\-\u2010-\u2015\u2212\ufe58\ufe63()\[\]{}]"
_BETWEEN_DIGITS_RE = re.compile(rf"(?<=[0-9]){_SEPARATOR}{{1,{_MAX_SEPARATORS}}}(?=[0-9])")
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63")


def card_view(text: str) -> tuple[str, list[int] | None]:
    """(view, where): ``where[i]`` is the index in ``text`` of view character ``i``; None
    when the view is ``text`` itself (the usual case: nothing to fold)."""
    if not text.isascii():
        text = "".join(_fold(char) if not char.isascii() else char for char in text)  # 1:1
    pieces: list[str] = []
    where: list[int] = []
    position = 0
    for match in _BETWEEN_DIGITS_RE.finditer(text):
        run = match.group()
        if run == " " or run == "-":
            continue  # already the form the run rule reads
        start = match.start()
        pieces.append(text[position:start])
        where.extend(range(position, start))
        pieces.append("-" if set(run) <= _DASHES else " ")
        where.append(start)
        position = match.end()
    if not pieces:
        return text, None
    pieces.append(text[position:])
    where.extend(range(position, len(text)))
    return "".join(pieces), where


def to_original(span: Span, where: list[int] | None) -> Span:
    """A view span (starting and ending on digits) as a span of the original text."""
    if where is None:
        return span
    start, end = span
    return where[start], where[end - 1] + 1


# Groups joined by one repeated '.' or '/': 4 digits, then 4-6, 4-5 and optionally 1-4 more
# (4-4-4-4, 4-6-5 Amex, 4-6-4 Diners, 4-4-4-4-3). Not preceded or followed by a digit or by
# numeric punctuation plus a digit, so decimals, dates and addresses stay whole.
_GROUPED_RE = re.compile(
    r"(?<![0-9])(?<![0-9][.,/:])[0-9]{4}([./])[0-9]{4,6}\1[0-9]{4,5}(?:\1[0-9]{1,4})?(?![0-9])"
)
# One unseparated group of card length with no digit on either side (letters may touch it).
_GLUED_RE = re.compile(r"(?<![0-9])[0-9]{12,19}(?![0-9])")
# Separators that glue a digit run to a neighbouring digit (decimals, times, dates, IP
# addresses, thousands separators): "1.4111...", "12:30", "01/05".
NUMERIC_PUNCTUATION = ".,/:"


def grouped_spans(view: str) -> Iterator[tuple[Span, str]]:
    """(span, digits) of dot- or slash-grouped numbers in the view."""
    for match in _GROUPED_RE.finditer(view):
        end = match.end()
        if end + 1 < len(view) and view[end] in NUMERIC_PUNCTUATION and view[end + 1].isdigit():
            continue  # "4111.1111.1111.1111.5": more groups of something else
        yield match.span(), re.sub(r"[./]", "", match.group())


def glued_spans(view: str) -> Iterator[tuple[Span, str]]:
    """(span, digits) of card-length digit groups touching letters, '_' or '=' (labels)."""
    for match in _GLUED_RE.finditer(view):
        start, end = match.span()
        before = view[start - 1] if start else ""
        after = view[end] if end < len(view) else ""
        if not (before.isalpha() or before in "_=" or after.isalpha() or after == "_"):
            continue  # not glued: the run rule already judged it
        if before and (before in NUMERIC_PUNCTUATION or before == "+"):
            continue
        if after in NUMERIC_PUNCTUATION and end + 1 < len(view) and view[end + 1].isdigit():
            continue
        yield (start, end), match.group()
