"""Who a ledger row is about: pseudonymous references for a data subject.

A subject reference is made only from a valid email address (``email-validator``, the syntax
rules without DNS lookups): `a@b` or `n/a` identify nobody, and a reference made from them
joined strangers into one "person" whom one erasure request then wiped out. Since one valid
address can still be typed by several people, each case also keeps a reference of the
visitor's name; two names under one email reference are a collision that subject access and
erasure refuse until narrowed by case or ticket.

Both references are HMAC-SHA256 under the ledger key: never the email or the name itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

import email_validator
from email_validator import EmailNotValidError, validate_email

# The common address, recognised by hand before email-validator is asked. The validator costs
# ~21 us a call (20,000 plain addresses, email-validator 2.4, measured on the benchmark's
# machine) and runs for every staged case: ~10 % of the pass's CPU samples at 10,000 chats
# (bench/RESULTS.md v11), and its lru_cache rarely hits since addresses are unique. This
# pattern accepts a subset of what the validator accepts (hypothesis tests:
# tests/unit/ledger/rights/test_subjects.py): an ASCII dot-atom local
# part (RFC 5322 atext; no quoting, no leading, trailing or doubled dot) and a domain of LDH
# labels of 1-63 characters (no hyphen at either end) under an alphabetic TLD, with no doubled
# hyphen (so no Punycode "xn--" label, nor the "ab--" labels the validator refuses). Anything
# else (Unicode, quoting, brackets, numeric TLDs, special-use names) goes to the validator.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_COMMON_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
# The validator's limit for the whole address (RFC 5321 4.5.3.1.3); ASCII, so characters are
# octets. It also bounds the domain below its 253.
_MAX_ADDRESS = 254


def common_address(cleaned: str) -> bool:
    """True when ``cleaned`` (already trimmed) is an address of the common shape that
    email-validator accepts; False means "ask the validator", not "invalid"."""
    if len(cleaned) > _MAX_ADDRESS or _COMMON_ADDRESS.fullmatch(cleaned) is None:
        return False
    domain = cleaned[cleaned.index("@") + 1 :].lower()
    if "--" in domain:
        return False
    # Names reserved for local or special use (.local, .test, .onion, ...): the validator's own
    # list, so a newer validator that reserves more names is followed here too.
    return not any(
        domain == name or domain.endswith("." + name)
        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
    )


@lru_cache(maxsize=4096)
def valid_email(value: str | None) -> str | None:
    """The address as the reference reads it (trimmed, lower-cased), or None when it is not
    a valid email address."""
    if not value or not value.strip() or len(value) > 320:
        return None
    cleaned = value.strip()
    if common_address(cleaned):
        return cleaned.lower()
    try:
        validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError:
        return None
    # Lower-cased as before validation existed, so references already stored still match.
    return cleaned.lower()


def subject_ref(key: bytes, email: str | None) -> str | None:
    """HMAC-SHA256 of the lower-cased, trimmed email; None unless it is a valid address."""
    address = valid_email(email)
    if address is None:
        return None
    return hmac.new(key, address.encode("utf-8"), hashlib.sha256).hexdigest()


def name_ref(key: bytes, name: str | None) -> str | None:
    """HMAC of the visitor's name (NFKC, case-folded, whitespace collapsed), or None for no
    name: tells two people behind one email reference apart without storing either name."""
    if not name:
        return None
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    if not folded:
        return None
    return hmac.new(key, b"name\n" + folded.encode("utf-8"), hashlib.sha256).hexdigest()
