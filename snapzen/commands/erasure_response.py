"""The answer to an erasure request: what was deleted, what remains where until when, and
who was told (Art. 17 and 19), as plain sentences for the person plus a JSON twin.

``build`` is pure (facts in, response out); ``respond`` reads the ledger for the person's
chats and writes the two files (0600, atomically). The Art. 19 notices are not recorded here:
the erasure chained them in its own transaction (snapzen.commands.erase_request), and the
response lists them as recorded. What remains:

- **SnapEngage** keeps its own copy of each chat (transcript, IP address, location, browser,
  pages visited) until the chat's start plus ``snapengage.retention_days``; snapzen cannot
  delete it there, so SnapEngage is recorded as a recipient *to notify*.
- **Zendesk's deleted-tickets bin** holds a ticket whose permanent deletion (purge) was not
  confirmed until Zendesk scrubs it, 30 days after the deletion.
- **Tickets snapzen did not create** (an email to support, say) that name the person stay:
  they are listed by id for the operator to review; the Zendesk profile stays while they do.
- **Backups**: copies of snapzen's database made before today hold the person's reference
  (and any chat not yet sent) until they are rotated out; a restored one has this erasure
  re-applied from the erasure journal (``snapzen ledger reapply-erasures``).

Ticket ids, dates and recipient names only: no email and no name, in the files or the ledger.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from snapzen.commands import controllers, copies, erase_request
from snapzen.commands.erase_request import Chat as Chat
from snapzen.commands.templates import TEMPLATES
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import period_keys
from snapzen.ledger.rights.requests import EVENTS as REQUEST_EVENTS
from snapzen.support import clock
from snapzen.support.atomic import atomic_text

if TYPE_CHECKING:
    from snapzen.clients.deletion import UserErasure
    from snapzen.commands.erase import ErasureResult
    from snapzen.support.settings import Settings

ZENDESK_TRASH_DAYS = 30  # Zendesk scrubs soft-deleted tickets after 30 days (reference §11.1)


def _profile(users: UserErasure | None) -> str:
    """What became of the person's Zendesk profile (``zendesk_profile`` in the response)."""
    if users is None:
        return "not_requested"
    if users.blocked:
        return "kept_tickets_remain"
    if users.deleted:
        return "deleted"
    if users.unconfirmed:  # none found, but the look-up could not see everything
        return "not_confirmed"
    return "not_found" if not users.to_delete and not users.refused else "not_requested"


def build(
    result: ErasureResult,
    *,
    request_id: str,
    today: date,
    chats: list[Chat],
    snapengage_days: int,
    users: UserErasure | None,
    held_copies: list[copies.Copy] | None = None,
    parties: list[controllers.Controller] | None = None,
) -> dict[str, Any]:
    """The response for one erasure run (pure), as its JSON document; the text renders it.
    ``held_copies``: the copies of the ledger that still hold the person (commands.copies);
    None when no register of copies exists. ``parties``: who answers for which chats
    (commands.controllers); none: the company alone."""
    plan, deleted = result.plan, sorted(result.deleted)
    remains = [
        _remain(
            "SnapEngage",
            "chat",
            chat.case_id,
            (chat.started_on + timedelta(days=snapengage_days)).isoformat(),
            "SnapEngage keeps its own copy of the chat (transcript, IP address, location, "
            f"browser, pages visited) for {snapengage_days} days after it started",
        )
        for chat in erase_request.at_snapengage(chats, today, snapengage_days)
    ]
    scrubbed = (today + timedelta(days=ZENDESK_TRASH_DAYS)).isoformat()
    for ticket_id in deleted:
        outcome = result.outcomes.get(ticket_id)
        if outcome is not None and not outcome.purged and not outcome.already_gone:
            why = "deleted; Zendesk scrubs deleted tickets after 30 days"
            remains.append(
                _remain("Zendesk deleted-tickets bin", "ticket", ticket_id, scrubbed, why)
            )
    named = {t for tickets in (users.blocked if users else {}).values() for t in tickets}
    for ticket_id in sorted(named - set(plan.held) - {t.ticket_id for t in plan.to_delete}):
        why = "another channel created it (an email to support, say); it names you and is "
        why += "reviewed separately"
        remains.append(
            _remain("Zendesk", "ticket not created by snapzen", ticket_id, "until reviewed", why)
        )
    if held_copies is None:  # no register of copies: what any backup holds, generically
        why = f"backups made before {today.isoformat()} still hold a coded reference to you; "
        why += "if one is ever restored, this erasure is applied again"
        remains.append(
            _remain("backups of snapzen's database", "backup", None, "until rotated out", why)
        )
    remains += [_copy_remains(held) for held in held_copies or []]
    profile = _profile(users)
    return {
        "request_id": request_id,
        "answered_on": today.isoformat(),
        "controllers": [c.as_dict() for c in parties or []],
        "deleted": {
            "zendesk_tickets": deleted,
            "chats_never_sent": list(plan.unsent),
            "zendesk_profile": profile == "deleted",
        },
        "not_deleted": {"legal_hold": sorted(plan.held), "failed": sorted(result.failed)},
        "zendesk_profile": profile,
        "remains": remains,
        "art19_recipients": [
            {
                "recipient": n.recipient,
                "status": n.status,
                "on": n.on,
                "how": n.how,
                "ledger_seq": n.seq,
                "notice_id": n.notice_id,
            }
            for n in result.notices or []  # as chained with the erasure
        ],
    }


def _remain(
    where: str, what: str, id: object, until: str, why: str, **made_on: str
) -> dict[str, Any]:
    """One item of ``remains``: where what stays (``id``: the chat or ticket), until when, why."""
    return {"where": where, "what": what, "id": id, **made_on, "until": until, "why": why}


def _copy_remains(held: copies.Copy) -> dict[str, Any]:
    made = held.made_at[:10]
    if held.kind == copies.BACKUP:
        why = (
            f"a backup of snapzen's database made on {made}, before this erasure: it holds "
            "your chats' records and a coded reference to you; if it is ever restored, "
            "this erasure is applied again"
        )
    else:
        why = (
            f"a copy of our erasure journal made on {made} with a checkpoint: it holds a "
            "coded reference to you and your earlier requests"
        )
    until = "until we delete it (snapzen does not delete copies itself)"
    return _remain(held.path, held.kind, None, until, why, made_on=made)


def held_copies(
    db: sqlite_utils.Database, ledger: Path, subject_ref: str, now: datetime
) -> list[copies.Copy] | None:
    """The registered copies of the ledger that hold this person (None: no register)."""
    if not copies.register_path(ledger).is_file():
        return None
    first = db.execute(
        "SELECT min(first_seen_at) FROM cases WHERE subject_ref = ?", (subject_ref,)
    ).fetchone()[0]
    marks = ", ".join("?" for _ in REQUEST_EVENTS)
    chats = (Event.TRANSFER, Event.WITHHELD, Event.IGNORED, Event.SENT, Event.ADOPTED)
    chained, refs = period_keys.match(db.conn, subject_ref)  # keyed by period: every one kept
    seen, asked = db.execute(
        "SELECT min(CASE WHEN event IN (?, ?, ?, ?, ?) THEN recorded_at END), "
        f"min(CASE WHEN event IN ({marks}) THEN recorded_at END) "
        f"FROM events WHERE {chained}",
        (*chats, *REQUEST_EVENTS, *refs),
    ).fetchone()
    since = min((t for t in (first, seen) if t), default=None)
    stamp = clock.format(now)
    return copies.holding(
        copies.recorded(ledger), backups_since=since, journal_since=asked, before=stamp
    )


def render_text(response: dict[str, Any]) -> str:
    """Plain sentences the person can read as they are (templates/erasure_response.txt)."""
    return TEMPLATES.get_template("erasure_response.txt").render(r=response)


def respond(
    db: sqlite_utils.Database,
    result: ErasureResult,
    settings: Settings,
    *,
    request_id: str,
    out_dir: Path,
    now: datetime,
    lookup: UserErasure | None = None,
) -> tuple[dict[str, Any], Path]:
    """Build the response (the controller of each chat from ``settings``), write
    ``erasure-response-<id>.txt`` and ``.json`` (0600) in ``out_dir``; returns the response
    and the text file's path. ``db`` is only read (no writer lock: the erasure chained
    everything, its Art. 19 notices too). ``lookup``: a read-only profile lookup (without
    ``--delete-user``), for the tickets not created by snapzen that name the person."""
    ref = result.plan.subject_ref
    chats = erase_request.person_chats(db.conn, ref)
    # A client's chats: the client is their controller.
    parties = controllers.group(settings, [(c.case_id, c.widget_id) for c in chats])
    response = build(
        result,
        request_id=request_id,
        today=now.astimezone(UTC).date(),
        chats=chats,
        snapengage_days=settings.snapengage.retention_days,
        users=result.users or lookup,
        held_copies=held_copies(db, Path(settings.ledger.path), ref, now),
        parties=parties,
    )
    text_path = out_dir / f"erasure-response-{request_id}.txt"
    with atomic_text(text_path) as handle:
        handle.write(render_text(response))
    with atomic_text(out_dir / f"erasure-response-{request_id}.json") as handle:
        handle.write(json.dumps(response, indent=2) + "\n")
    return response, text_path
