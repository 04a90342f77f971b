"""Keeping personal data out of text that is stored or shown: emails replaced, one line.

Apart from ``snapzen.support.log`` (which re-exports these) so that code which only scrubs
text need not import structlog (which brings rich and pygments).
"""

from __future__ import annotations

import re

# An email address in free text: pragmatic, not RFC 5322. The look-behind pins the start to the
# beginning of a local-part token, so each character is scanned by at most one attempt (no
# quadratic rescans on long words without '@'). The redaction rule `email` uses it too.
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}"
)


def scrub_personal(text: str) -> str:
    """Replace email addresses (e.g. echoed back in an API error) with a placeholder."""
    return EMAIL_RE.sub("[email]", text)


def one_line(value: object, limit: int = 500) -> str:
    """Text stored in the ledger or shown to ops (errors, reasons): one line, at most
    ``limit`` characters, no email addresses."""
    return scrub_personal(" ".join(str(value).split()))[:limit]
