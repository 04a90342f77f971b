"""Who a ledger row is about: pseudonymous references for a data subject.

A subject reference is made only from a valid email address, by the rule that also decides
the ticket's email (snapzen.policy.models.email_address): `a@b` or `n/a` identify nobody, and
a reference made from them joined strangers into one "person" whom one erasure request then
wiped out. Since one valid address can still be typed by several people, each case also keeps
a reference of the visitor's name; two names under one email reference are a collision that
subject access and erasure refuse until narrowed by case or ticket.

Both references are HMAC-SHA256 under the ledger key: never the email or the name itself.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from snapzen.policy.models import email_address


def subject_ref(key: bytes, email: str | None) -> str | None:
    """HMAC-SHA256 of the email as the one rule reads it (snapzen.policy.models.email_address):
    the address the ticket carries; None unless it is a valid address."""
    address = email_address(email)
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
