"""Email syntax check shared by the data generator (ground truth) and the fake Zendesk."""

from __future__ import annotations

import re

# Deliberately simple: one "@", no whitespace, a dotted domain with non-empty labels. It only has
# to agree with itself (truth vs. fake Zendesk), and it rejects the hostile samples we generate.
_EMAIL = re.compile(r"^[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+$")


def is_valid_email(value: object) -> bool:
    """True when *value* is a syntactically plausible email address."""
    return isinstance(value, str) and bool(_EMAIL.fullmatch(value))
