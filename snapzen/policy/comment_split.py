"""Pack transcript lines into Zendesk comments by encoded UTF-8 size.

Zendesk's comment limit is a size in bytes (about 64 KB, "depending on your encoding"), not a
number of characters: 60,000 characters of Cyrillic, CJK or emoji are 80-180 KB and were
refused ("body is too long") on every attempt. So parts are measured in UTF-8 bytes, cut at
line boundaries, and only a single line longer than a whole part is cut inside, at a
character boundary (never inside a multi-byte character).

Pure: no I/O. Joining the parts again gives the transcript back exactly (a test shows it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


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
