"""One email reference, several people: find it, and narrow a request to the right chats.

A valid address can still be typed by several visitors (a shared mailbox, a made-up
address). Each staged case keeps a reference of the visitor's name (``cases.name_ref``); two
different names under one email reference mean subject access would show one person the
others' transfers and erasure would delete their tickets. Requests by such a reference are
refused until narrowed by case or ticket (exit 2), listing the candidate chats: ids and
dates only, never names or emails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from snapzen.ledger.rights import period_keys
from snapzen.support.errors import ConfigError


@dataclass(frozen=True)
class Candidate:
    case_id: str
    ticket_id: int | None
    started_at: str | None
    widget_id: str | None
    status: str | None


class SubjectCollision(ConfigError):
    """One reference, several people: the request must name cases or tickets (exit 2)."""

    def __init__(self, people: int, candidates: list[Candidate]) -> None:
        super().__init__(
            f"this email reference is used by {people} different people (different names): "
            "narrow the request with --case ID or --ticket ID"
        )
        self.people = people
        self.candidates = candidates


def candidates(conn: sqlite3.Connection, ref: str) -> list[Candidate]:
    """Every chat under the reference: staged cases, and ledger rows whose case is gone."""
    chained, params = period_keys.match(conn, ref, prefix="t.")  # every period not forgotten
    rows = conn.execute(
        f"""SELECT case_id, ticket_id, started_at, widget_id, status FROM cases
           WHERE subject_ref = ?
           UNION
           SELECT case_id, max(ticket_id), NULL, max(widget_id), NULL FROM events t
           WHERE {chained} AND event IN ('transfer', 'sent')
             AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.case_id = t.case_id)
           GROUP BY case_id
           ORDER BY 3, 1""",
        (ref, *params),
    )
    return [Candidate(*row) for row in rows]


def people(conn: sqlite3.Connection, ref: str) -> int:
    """How many distinct visitor names chatted under the reference (unnamed chats: none)."""
    row = conn.execute(
        "SELECT count(DISTINCT name_ref) FROM cases WHERE subject_ref = ?", (ref,)
    ).fetchone()
    return int(row[0])


def select_cases(
    conn: sqlite3.Connection,
    ref: str,
    case_ids: Sequence[str] = (),
    ticket_ids: Sequence[int] = (),
) -> set[str] | None:
    """The case ids a request covers: None (all of the subject's) when none are named and
    the reference is one person's; SubjectCollision when it is several people's; ConfigError
    for a named case or ticket that is not under this reference."""
    found = candidates(conn, ref)
    if not case_ids and not ticket_ids:
        count = people(conn, ref)
        if count > 1:
            raise SubjectCollision(count, found)
        return None
    by_ticket = {c.ticket_id: c.case_id for c in found if c.ticket_id is not None}
    named = (("case", case_ids, {c.case_id for c in found}), ("ticket", ticket_ids, by_ticket))
    for what, wanted, known in named:
        for item in wanted:
            if item not in known:
                raise ConfigError(f"{what} {item} is not a chat of this email reference")
    return {*case_ids, *(by_ticket[ticket_id] for ticket_id in ticket_ids)}
