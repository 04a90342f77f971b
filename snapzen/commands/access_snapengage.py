"""SnapEngage's own copy of a person's chats, for the access pack.

SnapEngage keeps every chat about `snapengage.retention_days` after it started, whatever
snapzen decided (a withheld chat included). While it does, the pack carries what its Logs API
returns for that chat, every field (IP address, location, browser, pages visited, the
transcript): the person is entitled to that copy too. The Logs API has no read-by-id, so the
chat's widget is read over the days around its start and the case picked by id."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from snapzen.support.errors import SnapzenError


class ChatReader(Protocol):
    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Any]: ...


@dataclass
class Copies:
    by_case: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # SnapEngage did not answer: exit 3


def still_held(chat: dict[str, Any], today: date) -> bool:
    deletes_on = chat.get("snapengage_deletes_on")
    return bool(deletes_on and chat.get("widget_id") and chat.get("started_at")) and (
        date.fromisoformat(str(deletes_on)) > today
    )


def read_copies(reader: ChatReader, chats: list[dict[str, Any]], today: date) -> Copies:
    """The SnapEngage record of each chat it still holds, keyed by case id."""
    copies = Copies()
    for chat in chats:
        if not still_held(chat, today):
            continue
        case_id = str(chat["case_id"])
        day = date.fromisoformat(str(chat["started_at"])[:10])
        try:
            # A day either side: SnapEngage reads the window in its configured timezone.
            for page in reader.iter_pages(
                str(chat["widget_id"]), day - timedelta(days=1), day + timedelta(days=1)
            ):
                found = next(
                    (c for c in page.cases if isinstance(c, dict) and str(c.get("id")) == case_id),
                    None,
                )
                if found is not None:
                    copies.by_case[case_id] = found
                    break
        except SnapzenError:
            copies.unreadable.append(case_id)
    return copies


def attach(chats: list[dict[str, Any]], copies: Copies, today: date) -> None:
    """Each chat says whether SnapEngage's copy is in the pack, and carries it if so."""
    for chat in chats:
        case_id = str(chat["case_id"])
        if case_id in copies.by_case:
            chat["snapengage_copy"] = copies.by_case[case_id]
            chat["snapengage_copy_state"] = "included"
        elif case_id in copies.unreadable:
            chat["snapengage_copy_state"] = "unreadable"
        elif still_held(chat, today):
            chat["snapengage_copy_state"] = "not_found"
        else:
            chat["snapengage_copy_state"] = "deleted_by_snapengage"
