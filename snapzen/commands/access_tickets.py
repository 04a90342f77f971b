"""What an access pack reads from the services: the person's Zendesk tickets, and SnapEngage's
own copy of each of their chats.

Zendesk: snapzen's own tickets, read by id, and those Zendesk search finds by the person's
email that snapzen did not create. A ticket snapzen did not create (an email, a form, another
channel) may name other people or hold their messages: it is listed for the operator to
review and goes into the pack only when named with ``--include-ticket ID`` after that review
(Art. 15(4)).

SnapEngage keeps every chat about `snapengage.retention_days` after it started, whatever
snapzen decided (a withheld chat included). While it does, the pack carries what its Logs API
returns for that chat, every field (IP address, location, browser, pages visited, the
transcript): the person is entitled to that copy too. The Logs API has no read-by-id, so the
chat's widget is read over the days around its start and the case picked by id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from snapzen.clients.search_lag import by_id
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.cursor_rules import snapengage_holds
from snapzen.policy.transform import external_id
from snapzen.support.errors import ConfigError, SnapzenError

DELETED_EVENTS = (Event.ERASED, Event.EXPIRED)


class TicketReader(Protocol):
    def show_ticket(self, ticket_id: int) -> dict[str, Any] | None: ...

    def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]] | None: ...

    def requested_tickets(self, email: str) -> list[dict[str, Any]]: ...


@dataclass
class TicketsRead:
    tickets: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # Zendesk did not answer: exit 3
    # Found by email search, not created by snapzen, not (yet) included: never in the pack.
    for_review: list[dict[str, Any]] = field(default_factory=list)


def _transcript(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "created_at": c.get("created_at"),
            "author_id": c.get("author_id"),
            "public": c.get("public"),
            "body": c.get("body") or c.get("plain_body") or "",
        }
        for c in comments
    ]


def _review_entry(found: dict[str, Any]) -> dict[str, Any]:
    """What the operator needs to find the ticket; nothing of its content."""
    raw = found.get("via")
    via: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "ticket_id": int(found["id"]),
        "created_at": found.get("created_at"),
        "channel": via.get("channel"),
    }


def read_tickets(
    reader: TicketReader,
    ledger: list[dict[str, Any]],
    chats: list[dict[str, Any]],
    email: str | None,
    include: Sequence[int] = (),
) -> TicketsRead:
    """Every ticket of the person: known to the ledger (deleted ones listed as such), and with
    ``email`` those Zendesk search finds, which go to ``for_review`` unless in ``include``.
    ConfigError when ``include`` names a ticket the search did not find for this person."""
    out = TicketsRead()
    deleted = {
        int(r["ticket_id"]): r for r in ledger if r["event"] in DELETED_EVENTS and r["ticket_id"]
    }
    known: dict[int, str | None] = {}
    for row in [*ledger, *chats]:
        if row.get("ticket_id") is not None:
            known.setdefault(int(row["ticket_id"]), row.get("case_id"))
    searched = reader.requested_tickets(email.strip()) if email else []  # and its lag window
    foreign = {i: f for i, f in by_id(searched).items() if i not in known}
    stray = sorted(set(include) - set(foreign))
    if stray:
        raise ConfigError(
            f"--include-ticket {', '.join(map(str, stray))}: not a ticket Zendesk search found "
            "for this email that snapzen did not create"
            + ("" if email else " (--include-ticket needs --email)")
        )
    out.for_review = [_review_entry(f) for i, f in sorted(foreign.items()) if i not in include]
    for ticket_id in sorted({*known, *include}):  # included: foreign, so never known
        case_id, ours = known.get(ticket_id), ticket_id in known
        entry: dict[str, Any] = {
            "ticket_id": ticket_id,
            "case_id": case_id,
            "created_by_snapzen": ours,
            **({} if ours else {"reviewed": True}),
        }
        entry.update(_state(reader, ticket_id, case_id, deleted.get(ticket_id)))
        out.tickets.append(entry)
        if "error" in entry:  # not read, or not this chat's ticket: exit 3
            out.unreadable.append(ticket_id)
    return out


def _state(
    reader: TicketReader, ticket_id: int, case_id: str | None, deleted: dict[str, Any] | None
) -> dict[str, Any]:
    """What became of one ticket: deleted, present (with its transcript), not found, or not
    read (``error``). ``case_id``: the chat snapzen made it from, checked by external_id."""
    if deleted is not None:
        return {
            "state": "deleted",
            "deleted_on": str(deleted["recorded_at"])[:10],
            "deleted_because": deleted["event"],
        }
    try:
        ticket = reader.show_ticket(ticket_id)
        if ticket is not None and case_id and ticket.get("external_id") != external_id(case_id):
            # The ledger's ticket id is not this chat's ticket: showing it could hand one
            # person another's transcript. Named for the DPO, never included.
            return {"state": "not_this_chat", "error": "external_id mismatch"}
        comments = reader.ticket_comments(ticket_id) if ticket else None
    except SnapzenError as exc:
        return {"state": "unreadable", "error": type(exc).__name__}
    if ticket is None:
        return {"state": "not_found"}
    return {
        "state": "present",
        "subject": ticket.get("subject"),
        "status": ticket.get("status"),
        "created_at": ticket.get("created_at"),
        "tags": ticket.get("tags") or [],
        "transcript": _transcript(comments or []),
    }


class ChatReader(Protocol):
    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Any]: ...


def attach_copies(
    reader: ChatReader, chats: list[dict[str, Any]], today: date, retention_days: int
) -> tuple[int, list[str]]:
    """Each chat says whether SnapEngage's copy is in the pack, and carries it if so; returns
    how many copies were read and the case ids SnapEngage did not answer for (exit 3)."""
    copies, unreadable = 0, []
    for chat in chats:
        deletes_on, started = chat.get("snapengage_deletes_on"), chat.get("started_at")
        if not (deletes_on and started and chat.get("widget_id")) or not snapengage_holds(
            date.fromisoformat(str(started)[:10]), today, retention_days
        ):
            chat["snapengage_copy_state"] = "deleted_by_snapengage"
            continue
        case_id, day = str(chat["case_id"]), date.fromisoformat(str(started)[:10])
        # A day either side: SnapEngage reads the window in its configured timezone.
        window = (str(chat["widget_id"]), day - timedelta(days=1), day + timedelta(days=1))
        try:
            cases = (c for page in reader.iter_pages(*window) for c in page.cases)
            mine = (c for c in cases if isinstance(c, dict) and str(c.get("id")) == case_id)
            found = next(mine, None)
        except SnapzenError:
            unreadable.append(case_id)
            chat["snapengage_copy_state"] = "unreadable"
            continue
        chat["snapengage_copy_state"] = "not_found" if found is None else "included"
        if found is not None:
            chat["snapengage_copy"] = found
            copies += 1
    return copies, unreadable
