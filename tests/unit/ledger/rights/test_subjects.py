"""email_address (the one email rule, snapzen.policy.models): a subject reference exists only
for an address email-validator accepts.

A reference made from `a@b` or `n/a` would join strangers into one "person". (The hand-written
fast path for common addresses, and the hypothesis tests that held it to the validator's
verdict, were removed in issue 25: bench/RESULTS.md v14.)
"""

from __future__ import annotations

import pytest

from snapzen.policy.models import email_address


@pytest.mark.parametrize(
    "address",
    [
        "visitor.12@example.com",
        "Jane_Doe+tag@Mail.Example.CO.UK",
        "o'brien@sub-domain.example.org",
        "x@a.io",
    ],
)
def test_common_addresses_are_read_trimmed_and_lower_cased(address: str) -> None:
    assert email_address(f"  {address} ") == address.lower()


@pytest.mark.parametrize(
    "address",
    [
        "a@b",  # no dot: identifies nobody
        "n/a",
        "someone@host.local",
        "someone@printer.localhost",
        "someone@site.onion",
        "someone@1.168.192.in-addr.arpa",
        "someone@example.123",  # numeric TLD
        "some..one@example.com",
        ".someone@example.com",
        "someone@example..com",
        "someone@-example.com",
        "someone@ab--cd.example.com",  # reserved R-LDH label
        "someone@" + "d" * 64 + ".com",  # label over 63
        "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com",  # 255 in all
    ],
)
def test_addresses_the_validator_refuses_have_no_reference(address: str) -> None:
    assert email_address(address) is None


@pytest.mark.parametrize(
    "address",
    ["josé@example.com", "user@bücher.de", "someone@example.test"],
)
def test_other_valid_addresses_are_accepted_too(address: str) -> None:
    assert email_address(address) == address.lower()


def test_a_punycode_domain_keeps_the_spelling_its_references_were_made_of() -> None:
    # References stored before the one email rule were made of the trimmed, lower-cased
    # address; spelling the domain in Unicode would hide those chats from a lookup.
    assert email_address(" User@XN--BCHER-KVA.de ") == "user@xn--bcher-kva.de"
