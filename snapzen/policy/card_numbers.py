"""Payment card numbers as issuers define them: the IIN prefix table with each issuer's
lengths, and the Luhn checksum. Pure functions; snapzen.policy.redaction finds the numbers
in text with them."""

from __future__ import annotations

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


def is_ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def luhn_valid(digits: str) -> bool:
    """Return True if ``digits`` (ASCII digits only, non-empty) passes the Luhn check."""
    if not is_ascii_digits(digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_issuer(digits: str) -> str | None:
    """Return the issuer whose prefix and length rules fit ``digits``, else None.

    Only prefix and length are checked here; Luhn is :func:`luhn_valid`.
    """
    if not is_ascii_digits(digits):
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
    lengths: set[int] = set()
    for _, low, high, allowed in _IIN_TABLE:
        if low <= prefix[: len(low)] <= high:
            lengths |= allowed
    return frozenset(lengths)
