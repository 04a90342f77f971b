"""Who an adopted ticket is about: the subject and name references of the cases adoption and
restore add, so erasure, holds, subject access and the shared-email guard cover them.

In order of trust:
1. the replaced ledger's own case (restore): its references were made from the SnapEngage
   chat itself when the case was staged;
2. the ticket: the subject reference from its requester's email (``users/show_many``, one
   request per 100 requesters), the name reference from the visitor's name in its subject
   (``Chat with <name> on <day>``, as snapzen wrote it). Zendesk reuses one user for one
   email, so the requester's own name cannot tell two people on a shared email apart; the
   subject can.
Both are HMACs under the ledger key (ledger.subjects); no email or name is stored or logged.
A case whose ticket has no requester with a valid email keeps no reference, as a synced case
without one does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from snapzen.clients.search_lag import int_field
from snapzen.ledger.rights.subjects import name_ref, subject_ref
from snapzen.ledger.store.adopt import FoundTicket
from snapzen.policy.models import email_address
from snapzen.policy.transform import PLACEHOLDER_NAME

_SUBJECT = re.compile(r"Chat with (?P<display>.*) on \d{4}-\d{2}-\d{2}", re.DOTALL)

Refs = dict[str, tuple[str, str | None]]  # case id -> (subject_ref, name_ref)


class UserReads(Protocol):
    def show_users(self, user_ids: Sequence[int]) -> dict[int, str | None]: ...


def visitor_name(subject: object) -> str | None:
    """The visitor's name as the ticket subject carries it, or None when the subject shows
    the email (no name was given), the placeholder, or is not one snapzen wrote."""
    if not isinstance(subject, str):
        return None
    match = _SUBJECT.fullmatch(subject.strip())
    if match is None:
        return None
    display = match.group("display").strip()
    if not display or display == PLACEHOLDER_NAME or email_address(display) is not None:
        return None
    return display


def with_references(
    found: Mapping[str, Sequence[FoundTicket]],
    raw: Mapping[int, Mapping[str, Any]],
    key: bytes,
    users: UserReads,
    known: Callable[[Sequence[str]], Refs] | None = None,
) -> dict[str, list[FoundTicket]]:
    """``found`` with each ticket's subject_ref and name_ref set. ``raw`` holds the tickets
    as Zendesk showed them (by id); ``known`` gives the replaced ledger's references."""
    from_ledger = known(sorted(found)) if known is not None else {}
    requesters = {
        r
        for case_id, tickets in found.items()
        if case_id not in from_ledger
        for t in tickets
        if (r := int_field(raw.get(t.ticket_id), "requester_id")) is not None
    }
    emails = users.show_users(sorted(requesters)) if requesters else {}
    out: dict[str, list[FoundTicket]] = {}
    for case_id, tickets in found.items():
        out[case_id] = []
        for ticket in tickets:
            subject: str | None
            if case_id in from_ledger:
                subject, name = from_ledger[case_id]
            else:
                shown = raw.get(ticket.ticket_id, {})
                requester = int_field(shown, "requester_id")
                subject = subject_ref(key, emails.get(requester) if requester is not None else None)
                name = name_ref(key, visitor_name(shown.get("subject"))) if subject else None
            out[case_id].append(replace(ticket, subject_ref=subject, name_ref=name))
    return out
