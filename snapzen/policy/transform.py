"""Pure transform: a SnapEngage case and its decision → the Zendesk ticket-import payload.

No I/O here. Personal data is only reshaped (and redacted), never logged.

The transcript is packed into comments by encoded UTF-8 size. Zendesk's comment limit is a
size in bytes (about 64 KB, "depending on your encoding"), not a number of characters:
60,000 characters of Cyrillic, CJK or emoji are 80-180 KB and were refused ("body is too
long") on every attempt. So parts are measured in UTF-8 bytes, cut at line boundaries, and
only a single line longer than a whole part is cut inside, at a character boundary (never
inside a multi-byte character). Joining the parts again gives the transcript back exactly (a
test shows it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from snapzen.policy.models import (
    Decision,
    ImportComment,
    ImportRequester,
    ImportTicket,
    LegalBasis,
    SnapEngageCase,
    email_address,
)
from snapzen.policy.redaction import RedactionResult
from snapzen.support import clock
from snapzen.support.settings import Settings

EXTERNAL_ID_PREFIX = "snapengage:"
VISITOR_LABEL = "Visitor"
OPERATOR_LABEL = "Operator"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Redact = Callable[[str], RedactionResult]


def external_id(case_id: str) -> str:
    return f"{EXTERNAL_ID_PREFIX}{case_id}"


def clean_text(text: str | None) -> str:
    """Make text safe to send: no lone surrogates (bad \\u escapes), no control characters."""
    if not text:
        return ""
    if text.isascii() and text.isprintable():
        return text  # fast path: no surrogates and no control characters to remove
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL_CHARS.sub("", text)


def add_years(day: date, years: int) -> date:
    """Same month and day ``years`` later; 29 February becomes 28 February."""
    return clock.add_months(day, 12 * years)


def retention_until(started_at: datetime, years: int) -> date:
    return add_years(started_at.astimezone(UTC).date(), years)


def expiry_tag(started_at: datetime, years: int) -> str:
    end = retention_until(started_at, years)
    return f"expires_{end.year:04d}_{end.month:02d}"


@dataclass
class TicketDraft:
    """The payload plus what the ledger needs to know about how it was made."""

    ticket: ImportTicket
    redactions: dict[str, int] = field(default_factory=dict)
    retention_until: date | None = None
    # The categories of personal data this ticket carries (SENT_CATEGORIES, in that order).
    categories: list[str] = field(default_factory=lambda: ["chat_content"])


@dataclass
class CommentPart:
    """One comment's worth of transcript: when its first line was written, its lines, and
    whether its last line goes on in the next part (a line longer than a whole part)."""

    moment: datetime
    lines: list[str]
    size: int = 0  # UTF-8 bytes of "\n".join(lines)
    continues: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def utf8_size(text: str) -> int:
    # ASCII is the common case: its length is its size, without encoding a copy.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def cut_at_bytes(text: str, limit: int) -> tuple[str, str]:
    """``text`` split so the head is at most ``limit`` UTF-8 bytes, at a character boundary;
    a whitespace in the last eighth of the head is preferred (a word is not split)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, ""
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:  # a continuation byte: inside a character
        end -= 1
    space = data.rfind(b" ", max(0, end - max(1, limit // 8)), end)
    if space > 0:
        end = space + 1  # the space stays with the head
    if end == 0:  # limit smaller than one character: take the character anyway
        end = 1
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end += 1
    return data[:end].decode("utf-8"), data[end:].decode("utf-8")


def split_by_bytes(
    lines: Iterable[tuple[datetime | None, str]], limit: int, start: datetime
) -> list[CommentPart]:
    """Lines packed greedily into parts of at most ``limit`` UTF-8 bytes (newlines counted)."""
    if limit < 1:
        raise ValueError("limit must be at least one byte")
    parts: list[CommentPart] = []
    for moment, line in lines:
        size = utf8_size(line)
        last = parts[-1] if parts else None
        if last is not None and not last.continues and last.size + 1 + size <= limit:
            last.lines.append(line)
            last.size += 1 + size
            continue
        rest, when = line, moment or start
        while True:
            head, rest = cut_at_bytes(rest, limit)
            parts.append(CommentPart(when, [head], utf8_size(head), continues=bool(rest)))
            if not rest:
                break
    return parts


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def transcript_lines(
    case: SnapEngageCase,
    redact: Redact,
    counts: dict[str, int],
    line_times: list[datetime | None] | None = None,
) -> Iterator[tuple[datetime | None, str]]:
    """``[HH:MM:SS] alias: message`` per transcript entry, in time order, redacted.

    ``line_times``: each entry's ``at``, when the caller computed them already."""
    if line_times is None:
        line_times = [entry.at for entry in case.transcripts]
    order = sorted(range(len(case.transcripts)), key=lambda i: (line_times[i] or _NO_TIME, i))
    for index in order:
        entry = case.transcripts[index]
        moment = line_times[index]
        stamp = clock.time_of_day(moment) if moment else "--:--:--"
        if entry.is_visitor:
            speaker = VISITOR_LABEL
        else:
            speaker = clean_text(entry.alias).strip() or OPERATOR_LABEL
        message = _redacted(clean_text(entry.message), redact, counts)
        yield moment, f"[{stamp}] {speaker}: {message}"


def _redacted(text: str, redact: Redact, counts: dict[str, int]) -> str:
    if not text:
        return text
    result = redact(text)
    for category, number in result.counts.items():
        counts[category] = counts.get(category, 0) + number
    return result.text


PLACEHOLDER_NAME = "SnapEngage visitor"  # the requester's name when the visitor gave none
# What a ticket can carry about the visitor: their name (requester, subject), their email
# (requester, when valid), the chat. Each ledger row lists those its ticket carries.
SENT_CATEGORIES = ("identity", "contact_data", "chat_content")


def build_ticket(
    case: SnapEngageCase, decision: Decision, settings: Settings, redact: Redact
) -> TicketDraft:
    """Map one finished case to an import payload. Raises ValueError if the case has no start."""
    started = case.started_at
    if started is None:
        raise ValueError("case has no usable start time")
    line_times = [entry.at for entry in case.transcripts]  # computed once per entry
    ended = case.ended_at(started, line_times) or started
    zendesk = settings.zendesk
    counts: dict[str, int] = {}

    # The name is free text the visitor typed (a card number went in it): it becomes the
    # requester's name and the subject, so it is redacted like the transcript.
    name = _redacted(clean_text(case.visitor_name), redact, counts).strip()[:200]
    email = email_address(case.visitor_email)  # the address the subject reference is made of
    valid = email is not None
    display = name or email or PLACEHOLDER_NAME
    # No usable email: a name-only requester may be refused by the account (Zendesk's docs
    # disagree on whether the email is required) and could never be found by email for
    # erasure. The configured shared user (if any) is the requester; the name stays in the
    # subject.
    requester_id = None if valid else zendesk.anonymous_requester_id
    shown = ImportRequester(name=display, email=email)
    requester = None if requester_id else shown

    lines = list(transcript_lines(case, redact, counts, line_times))
    if not lines:
        # Offline messages carry the text in `description` and have no transcript.
        first = _redacted(clean_text(case.description), redact, counts).strip()
        lines = (
            [(started, f"[{clock.time_of_day(started)}] {VISITOR_LABEL}: {first}")] if first else []
        )
    header = f"SnapEngage {clean_text(case.type) or 'chat'} transcript, case {case.id}"
    # Room (in UTF-8 bytes, Zendesk's measure) for the header, the widest part label and the
    # blank line between them.
    body_limit = zendesk.comment_max_bytes - utf8_size(header) - len(" (part 99999/99999)") - 2
    parts = split_by_bytes(lines, body_limit, started)
    packed = [(p.moment, p.text) for p in parts] or [(started, "(no messages)")]
    comments = []
    for number, (moment, text) in enumerate(packed, start=1):
        label = f" (part {number}/{len(packed)})" if len(packed) > 1 else ""
        comments.append(
            ImportComment(
                value=f"{header}{label}\n\n{text}",
                public=False,
                created_at=clock.format(max(moment, started)),
                author_id=zendesk.comment_author_id,
            )
        )

    basis = decision.basis or LegalBasis.NOT_RESTRICTED
    years = settings.transfer.retention_years
    subject = f"Chat with {display} on {started.date().isoformat()}"
    solved = zendesk.ticket_status in ("solved", "closed")
    ticket = ImportTicket(
        external_id=external_id(case.id),
        subject=subject[:255],
        requester=requester,
        requester_id=requester_id,
        created_at=clock.format(started),
        updated_at=clock.format(ended),
        solved_at=clock.format(ended) if solved else None,
        status=zendesk.ticket_status,
        comments=comments,
        tags=["snapengage", expiry_tag(started, years), basis.tag],
    )
    # The name goes out in the requester and subject, a valid email in the requester (or the
    # subject, when it stands for the name); the anonymous requester carries neither.
    sent = {"identity": bool(name), "contact_data": valid, "chat_content": True}
    return TicketDraft(
        ticket=ticket,
        redactions=counts,
        retention_until=retention_until(started, years),
        categories=[category for category in SENT_CATEGORIES if sent[category]],
    )
