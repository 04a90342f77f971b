"""Redaction of personal and payment data before a transcript leaves for Zendesk.

Data minimisation (GDPR Art. 5(1)(c)): values that the support ticket does not
need (payment card numbers, and optionally IBANs, e-mail addresses and national
identifiers) are replaced by a visible marker ``[REDACTED:<category>]`` so the
agent can see that something was removed, and the per-category counts are
recorded in the transfer ledger together with :data:`DETECTOR_VERSION`.

Why hand-written: no maintained library detects card numbers in free text with
Luhn + issuer prefix + issuer length checks without pulling in heavy NLP stacks
(Presidio needs spaCy models); the rules below are small, auditable and pure.

This module is pure: no I/O and no logging. Matched values never leave
:meth:`Redactor.redact` except as markers and counts.

Overlap policy
--------------
Every rule reports spans on the *original* text; spans are then merged: any
spans that overlap are unioned into one span (so no character matched by any
rule survives) and replaced by a single marker whose category is that of the
earliest rule, in :class:`Redactor` rule order, among the merged spans; it
counts as one redacted value. Spans that merely touch stay separate.

Text that already contains markers (e.g. a message redacted before) is
protected: candidate spans overlapping an existing marker are ignored, and a
card digit run directly touching a marker is treated as glued to it, as it was
to the value the marker replaced. Together with repeating passes until nothing
is found, this makes :meth:`Redactor.redact` idempotent.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from stdnum import iban as iban_registry
from stdnum import numdb
from stdnum.luhn import is_valid as luhn_valid  # ASCII digits only

from snapzen.policy import cards
from snapzen.support.scrub import EMAIL_RE
from snapzen.support.setting_checks import (
    check_redaction_rules,
    compile_patterns,
)

# Bump whenever detection behaviour changes: the ledger stores it next to the
# counts so an auditor can tell which rules produced them.
# 2: IBANs checked against the registry's BBAN formats. python-stdnum is held to 2.2.x
# (pyproject.toml): its registry is part of the rules, so upgrading it means a new version.
DETECTOR_VERSION = "snapzen-redaction/2"

Span = tuple[int, int]

# Anything we could have produced ourselves; see "Overlap policy" above.
_NO_COUNTS: Mapping[str, int] = MappingProxyType({})
_MARKER_RE = re.compile(r"\[REDACTED:[A-Za-z0-9_.-]{1,64}\]")


# --------------------------------------------------------------------------
# Payment cards
# --------------------------------------------------------------------------

# A maximal run of ASCII digit groups joined by single spaces or hyphens. Every
# repetition must start with a separator, so there is exactly one way to match
# a run and no lookaround for the engine to backtrack into: linear time. The
# boundary and grouping logic lives in Python (_CardRule.find) instead.
_DIGIT_RUN_RE = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_DIGIT_GROUP_RE = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------
# IBAN (ISO 13616)
# --------------------------------------------------------------------------

# Electronic form (no spaces) or paper form (groups of four separated by single
# spaces, ISO 13616-1 section 5). Bounded quantifiers only. Greedy: the paper
# form may run on into following groups; _iban_spans() cuts it to the
# country's length.
_IBAN_CANDIDATE_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}"
    r"(?:[A-Z0-9]{11,30}|(?:\x20[A-Z0-9]{4}){2,7}(?:\x20[A-Z0-9]{1,3})?)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)


_IBAN_REGISTRY = numdb.get("iban")  # what iban_registry checks against


def iban_valid(value: str) -> bool:
    """ISO 13616 check (python-stdnum's copy of the SWIFT IBAN registry): known country, that
    country's BBAN format and length, mod-97 == 1. The national check digits some countries
    add inside the BBAN are not checked: a typed IBAN is redacted whatever its bank.

    Spaces are ignored and letters may be in either case.
    """
    compact = value.replace(" ", "")
    return (
        compact.isascii()
        and compact.isalnum()
        and iban_registry.is_valid(compact, check_country=False)
    )


@cache  # at most 26 x 26 country codes
def _iban_length(country: str) -> int | None:
    """The IBAN length of ``country`` in the registry (its BBAN structure, e.g. ``4!a14!n``,
    plus the country code and check digits); None for a country it does not list."""
    found = _IBAN_REGISTRY.info(country)[0][1].get("bban")
    return 4 + sum(int(n) for n in re.findall(r"(\d+)!", found)) if found else None


def _iban_spans(text: str) -> Iterator[Span]:
    pos = 0
    while (match := _IBAN_CANDIDATE_RE.search(text, pos)) is not None:
        raw = match.group()
        # The paper form may run on into following groups: cut between groups, never inside
        # one, where the registry's length for the country ends (no other cut can be valid,
        # so the registry's costly check runs once per candidate).
        cuts = [offset for offset, char in enumerate(raw) if char == " "] + [len(raw)]
        length = _iban_length(raw[:2].upper())
        fits = (cut for cut in cuts if len(raw[:cut]) - raw.count(" ", 0, cut) == length)
        end = next((cut for cut in fits if iban_valid(raw[:cut])), None)
        if end is not None:
            yield match.start(), match.start() + end
            pos = match.start() + end
        else:
            pos = match.start() + 1


# --------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RedactionRule:
    """A category and a compiled pattern.

    ``name`` is the category shown in the marker and used as the counts key.
    Empty matches are ignored. Subclasses may override :meth:`find` when a
    regular expression alone cannot express the rule (cards, IBANs).
    """

    name: str
    pattern: re.Pattern[str]

    def may_match(self, text: str) -> bool:
        """False only when :meth:`find` surely yields nothing for ``text``: a cheap, exact
        necessary condition, the one prefilter of a rule (most chat lines hold nothing to
        redact, and :class:`Redactor` calls :meth:`find` only where this is True)."""
        return True

    def find(self, text: str) -> Iterator[Span]:
        """Yield (start, end) spans of ``text`` that this rule redacts."""
        for match in self.pattern.finditer(text):
            if match.start() != match.end():
                yield match.span()


@dataclass(frozen=True)
class _IbanRule(RedactionRule):
    def find(self, text: str) -> Iterator[Span]:
        return _iban_spans(text)


@dataclass(frozen=True)
class _EmailRule(RedactionRule):
    def may_match(self, text: str) -> bool:
        return "@" in text  # every match of EMAIL_RE contains '@'


def _glued_before(text: str, start: int, marker_ends: frozenset[int]) -> bool:
    if start == 0:
        return False
    char = text[start - 1]
    if char.isalnum() or char == "_":
        return True  # "x4111...", "GB82": part of a word or code
    if char == "+":
        return True  # "+44 20 ...": international phone numbers
    if char in cards.NUMERIC_PUNCTUATION and start >= 2 and text[start - 2].isdigit():
        return True  # "1.4111...", "12:30", "01/05/2024"
    return start in marker_ends


def _glued_after(text: str, end: int, marker_starts: frozenset[int]) -> bool:
    if end == len(text):
        return False
    char = text[end]
    if char.isalnum() or char == "_":
        return True
    if char in cards.NUMERIC_PUNCTUATION and end + 1 < len(text) and text[end + 1].isdigit():
        return True
    return end in marker_starts


@dataclass(frozen=True)
class _CardRule(RedactionRule):
    """Payment card numbers: Luhn + issuer prefix + issuer length, with boundaries.

    A *run* is a maximal sequence of ASCII digit groups joined by single spaces
    or hyphens. Groups joined by hyphens form an indivisible *unit* (so a
    hyphenated UUID, date or reference is never cut into a card); units are
    separated by spaces. A card is a contiguous sequence of units holding 12-19
    digits that passes the issuer table and Luhn. Per run we take the leftmost start,
    and from it the longest valid sequence, then continue after it. This finds
    "4111 1111 1111 1111 12/25" (card then expiry) but never a card inside a
    longer unseparated digit string, because a single group cannot be split.

    A unit is excluded if it is glued to its surroundings (see _glued_before /
    _glued_after: letters, '+', numeric punctuation, existing markers) or lies
    in a valid IBAN, whether or not the IBAN rule is enabled.
    """

    def may_match(self, text: str) -> bool:
        return cards.LOOSE_PREFILTER_RE.search(text) is not None  # see find()

    def find(self, text: str) -> Iterator[Span]:
        """Cards in ``text`` as typed: found in its normalised view (``cards``: NFKC,
        any separator, brackets), reported as spans of the original characters."""
        view, where = cards.card_view(text)
        for span in self._find_in_view(view):
            yield cards.to_original(span, where)

    def _find_in_view(self, text: str) -> Iterator[Span]:
        yield from self._runs(text)
        # Dot/slash-grouped and label-glued numbers, which the run rule leaves alone (they are
        # decimals, dates or codes there), taken only as a whole issuer-valid Luhn card.
        extra = [*cards.grouped_spans(text), *cards.glued_spans(text)]
        if extra:
            ibans = list(_iban_spans(text))
            starts = [start for start, _ in ibans]
            for (start, end), digits in extra:
                valid = cards.card_issuer(digits) is not None and luhn_valid(digits)
                if valid and not _overlaps(ibans, starts, start, end):
                    yield start, end

    def _runs(self, text: str) -> Iterator[Span]:
        iban_spans: list[Span] | None = None
        iban_starts: list[int] = []
        marker_starts: frozenset[int] = frozenset()
        marker_ends: frozenset[int] = frozenset()
        for run in _DIGIT_RUN_RE.finditer(text):
            if run.end() - run.start() < cards.CARD_MIN_DIGITS:
                continue  # too few characters to hold 12 digits
            if iban_spans is None:  # computed once, for the first run that could hold a card
                iban_spans = list(_iban_spans(text))
                iban_starts = [start for start, _ in iban_spans]
                markers = [m.span() for m in _MARKER_RE.finditer(text)]
                marker_starts = frozenset(start for start, _ in markers)
                marker_ends = frozenset(end for _, end in markers)
            units = _split_units(text, run)
            usable = [True] * len(units)
            if _glued_before(text, run.start(), marker_ends):
                usable[0] = False
            if _glued_after(text, run.end(), marker_starts):
                usable[-1] = False
            for index, (start, end, _) in enumerate(units):
                if _overlaps(iban_spans, iban_starts, start, end):
                    usable[index] = False
            yield from _cards_in_units(units, usable)


def _overlaps(spans: Sequence[Span], starts: Sequence[int], start: int, end: int) -> bool:
    """Whether [start, end) overlaps any of ``spans`` (sorted, non-overlapping)."""
    pos = bisect_right(starts, start) - 1
    if pos >= 0 and spans[pos][1] > start:
        return True
    return pos + 1 < len(spans) and spans[pos + 1][0] < end


def _split_units(text: str, run: re.Match[str]) -> list[tuple[int, int, str]]:
    """Split a digit run into hyphen-joined units: (start, end, digits)."""
    units: list[tuple[int, int, str]] = []
    unit_start = run.start()
    unit_digits: list[str] = []
    for group in _DIGIT_GROUP_RE.finditer(text, run.start(), run.end()):
        unit_digits.append(group.group())
        if group.end() == run.end() or text[group.end()] == " ":
            units.append((unit_start, group.end(), "".join(unit_digits)))
            unit_start = group.end() + 1
            unit_digits = []
    return units


def _cards_in_units(
    units: Sequence[tuple[int, int, str]], usable: Sequence[bool]
) -> Iterator[Span]:
    """Leftmost start, then longest valid card, then continue after it."""
    index = 0
    while index < len(units):
        best: int | None = None
        digits = ""
        lengths: frozenset[int] | None = None
        last = index
        # At most 19 digits per candidate, so at most 19 units are tried per
        # start and at most 8 Luhn checks (Maestro's 12-19) run per start:
        # linear in the run length overall.
        while last < len(units) and usable[last]:
            digits += units[last][2]
            if len(digits) > cards.CARD_MAX_DIGITS:
                break
            if lengths is None and len(digits) >= 6:
                lengths = cards.card_lengths(digits[:6])
                if not lengths:
                    break  # no issuer starts like this
            if lengths is not None and len(digits) in lengths and luhn_valid(digits):
                best = last
            last += 1
        if best is None:
            index += 1
        else:
            yield units[index][0], units[best][1]
            index = best + 1


# UK National Insurance number (HMRC NIM39110): two prefix letters (first not
# D F I Q U V; second not D F I O Q U V; BG GB KN NK NT TN ZZ never issued),
# six digits, suffix A-D. Optional single spaces as printed: "AB 12 34 56 C".
_UK_NINO_RE = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\x20?[0-9]{2}\x20?[0-9]{2}\x20?[0-9]{2}\x20?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)
# US Social Security number, hyphenated form only (the bare 9-digit form is too
# ambiguous in chat). SSA never issues area 000, 666 or 900-999, group 00 or
# serial 0000.
_US_SSN_RE = re.compile(
    r"(?<![A-Za-z0-9-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
    r"(?![A-Za-z0-9-])"
)

# Rules the config can switch on by name. Instances are immutable and shared.
BUILTIN_RULES: Mapping[str, RedactionRule] = MappingProxyType(
    {
        "card": _CardRule("card", _DIGIT_RUN_RE),
        "iban": _IbanRule("iban", _IBAN_CANDIDATE_RE),
        "email": _EmailRule("email", EMAIL_RE),
        "uk_nino": RedactionRule("uk_nino", _UK_NINO_RE),
        "us_ssn": RedactionRule("us_ssn", _US_SSN_RE),
    }
)


# --------------------------------------------------------------------------
# Redactor
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RedactionResult:
    """Redacted text and, per category, how many values were replaced.

    Categories with nothing redacted are absent from ``counts``.
    """

    text: str
    counts: Mapping[str, int]


class Redactor:
    """Applies rules to text; see the module docstring for the overlap policy."""

    def __init__(self, rules: Sequence[RedactionRule]) -> None:
        self.rules: tuple[RedactionRule, ...] = tuple(rules)

    @classmethod
    def from_config(
        cls,
        enabled: Sequence[str] = ("card",),
        extra_patterns: Mapping[str, str] | None = None,
    ) -> Redactor:
        """Build from config: built-in rule names, then user ``{name: regex}``.

        Rule priority (for overlaps) is ``enabled`` order, then ``extra_patterns``
        order. Raises ValueError naming the offending rule or pattern.
        """
        rules = [BUILTIN_RULES[name] for name in dict.fromkeys(check_redaction_rules(enabled))]
        patterns = compile_patterns(extra_patterns or {})
        return cls([*rules, *(RedactionRule(name, regex) for name, regex in patterns.items())])

    def redact(self, text: str) -> RedactionResult:
        """Replace every detected value by ``[REDACTED:<category>]``.

        Passes are repeated until one finds nothing, so ``redact`` is idempotent
        by construction even when a replacement changes a neighbour's context
        (e.g. an SSN that was glued to an e-mail address). This terminates: a
        pass only replaces characters outside existing markers, so their
        number strictly decreases. In practice there are one or two passes.
        """
        for rule in self.rules:
            if rule.may_match(text):
                break
        else:  # no rule can match: the first pass would find nothing (the usual chat line)
            return RedactionResult(text, _NO_COUNTS)
        counts: Counter[str] = Counter()
        current = text
        while True:
            current, found = self._redact_once(current)
            if not found:
                return RedactionResult(current, MappingProxyType(dict(counts)))
            counts.update(found)

    def _redact_once(self, text: str) -> tuple[str, Counter[str]]:
        # Every marker starts with "[REDACTED:", so without it there is nothing to protect.
        protected = [m.span() for m in _MARKER_RE.finditer(text)] if "[REDACTED:" in text else []
        protected_starts = [start for start, _ in protected]
        candidates: list[tuple[int, int, int]] = []
        for priority, rule in enumerate(self.rules):
            for start, end in rule.find(text) if rule.may_match(text) else ():
                if not _overlaps(protected, protected_starts, start, end):
                    candidates.append((start, end, priority))
        if not candidates:
            return text, Counter()

        candidates.sort()
        merged: list[list[int]] = []
        for start, end, priority in candidates:
            if merged and start < merged[-1][1]:
                last = merged[-1]
                last[1] = max(last[1], end)
                last[2] = min(last[2], priority)
            else:
                merged.append([start, end, priority])

        pieces: list[str] = []
        cursor = 0
        for start, end, priority in merged:
            pieces += [text[cursor:start], f"[REDACTED:{self.rules[priority].name}]"]
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces), Counter(self.rules[priority].name for *_, priority in merged)
