"""Journalling an erasure, withdrawal or objection request (``ledger erase --reason``).

After the deletions, the erasure's own transaction (snapzen.commands.erase: its ``erased``
events and run row) also appends the ``request`` event (date received, Art. 12(3) deadline,
outcome and counts; open while tickets remain to delete), the Art. 19 notices
(decided below) and remembers the subject in ``erased_subjects``; then
lines go to the erasure journal outside the database (snapzen.ledger.rights.erasure_journal): the
erasure, the request and its notices (so a restored backup gets them back). The journal comes
last: it is idempotent to re-apply, and it must not claim a deletion the ledger has not
recorded.

The Art. 19 notices: which recipients an erasure must be communicated to, and how. Decided
from the erasure's own result and the person's chats, and chained in the erasure's own
transaction: an erasure is never recorded without its notices, nor the notices without it.

- **Zendesk** is *notified* when snapzen deleted something there itself (the deletion is the
  notice);
- **SnapEngage** is *to be told* for each chat it still holds (it has no deletion API);
- every recipient of kind ``other`` (``[transfer] recipients`` with ``system = "other"``, and
  ``[record] recipients``) is *to be told*: snapzen never sends to them, so it cannot know
  what they hold, and the operator tells them which chats to erase. An open notice stays
  listed (``snapzen ledger notices``) until ``ledger notices done`` records that it was told.

Ids, dates and recipient names only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from snapzen.ledger.rights import erasure_journal, notices, requests
from snapzen.ledger.rights.erasure_reapply import remember_subject
from snapzen.ledger.store.cursor_rules import snapengage_holds
from snapzen.support import clock
from snapzen.support.settings_gdpr import RecipientSystem

if TYPE_CHECKING:
    from snapzen.commands.erase import ErasureResult
    from snapzen.support.settings import Settings


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    kind: str  # erasure | withdrawal | objection (requests.REASON_KINDS)
    received_on: date
    journal: Path  # the rights journal the erasure, its request and notices go to
    journal_key: bytes  # the ledger key: journal lines are keyed with it
    # Art. 19 (decide): SnapEngage's retention in days; None records no notices
    # (tests of the erasure alone). ``others``: the recipients of kind other, by name.
    snapengage_days: int | None = None
    others: tuple[str, ...] = ()


def outcome_of(result: ErasureResult) -> tuple[str, str]:
    """(status, outcome) of the request after this erasure run."""
    plan = result.plan
    if result.partial:
        return requests.OPEN, "partial"
    if plan.subject_held:
        return requests.CLOSED, "refused_legal_hold"
    found = plan.to_delete or plan.already_erased or plan.unsent or plan.held
    if not found and not result.deleted:
        return requests.CLOSED, "nothing_found"
    return requests.CLOSED, "erased_partly_held" if plan.held else "erased"


def chain_request(
    conn: sqlite3.Connection,
    request: RequestInfo,
    result: ErasureResult,
    *,
    actor: str,
    reason: str,
    now: datetime | None,
    only_cases: Collection[str] | None = None,
) -> erasure_journal.Contents:
    """Inside the erasure's transaction: the request event and its Art. 19 notices (stored
    on ``result.notices``); returns the lines for the rights journal (the erasure, unless the
    person is held, and the events appended). A narrowed erasure (chats of a shared email)
    names its chats and never marks the whole reference as erased; it journals those chats
    only."""
    moment = (now or clock.now()).astimezone(UTC)
    plan, narrowed = result.plan, sorted(only_cases) if only_cases is not None else None
    status, outcome = outcome_of(result)
    counts = {
        "reason": reason,
        "tickets_deleted": len(result.deleted),
        "tickets_failed": len(result.failed),
        "tickets_held": len(plan.held),
        "already_erased": len(plan.already_erased),
        "chats_withheld": len(plan.unsent),
        "chats_in_flight": len(plan.in_flight),
        "erase_run_id": result.run_id,
        **({"narrowed": True, "cases": narrowed} if narrowed is not None else {}),
    }
    details = requests.request_details(request.kind, request.received_on, status, outcome, counts)
    recorder = requests.Recorder(conn, actor, moment)
    recorder.append(requests.EVENT, request.request_id, plan.subject_ref, details)
    if request.snapengage_days is not None:
        chats = [
            c
            for c in person_chats(conn, plan.subject_ref)
            if narrowed is None or c.case_id in narrowed
        ]
        decided = decide(result, chats, moment.date(), request.snapengage_days, request.others)
        # A notice already owed for the same thing (a rerun) is not owed twice: listed again.
        owed = {(n.recipient, n.how): n for n in notices.open_notices(conn, plan.subject_ref)}
        fresh = [n for n in decided if (n.recipient, n.how) not in owed]
        result.notices = [
            owed[(n.recipient, n.how)] for n in decided if (n.recipient, n.how) in owed
        ]
        result.notices += notices.record(
            recorder, fresh, request_id=request.request_id, subject_ref=plan.subject_ref
        )
    lines = erasure_journal.Contents([], [erasure_journal.request_line(r) for r in recorder.rows])
    if plan.subject_held:
        return lines
    stamp = clock.format(moment)
    if narrowed is None:
        remember_subject(conn, plan.subject_ref, stamp, request.request_id)
    entry = erasure_journal.JournalEntry(
        request.request_id,
        plan.subject_ref,
        stamp,
        reason,
        tickets=sorted(set(result.deleted) | set(plan.already_erased)),
        cases=narrowed if narrowed is not None else list(plan.unsent),
        narrowed=narrowed is not None,
        widgets=erasure_journal.widgets_of(conn, narrowed or []),
    )
    lines.erasures.append(entry)
    return lines


@dataclass(frozen=True)
class Chat:
    case_id: str
    started_on: date
    widget_id: str | None = None


def person_chats(conn: sqlite3.Connection, subject_ref: str) -> list[Chat]:
    """Every chat of the person snapzen knows (sent, withheld or pending), oldest first."""
    rows = conn.execute(
        "SELECT case_id, started_at, widget_id FROM cases WHERE subject_ref = ? "
        "AND started_at IS NOT NULL ORDER BY started_at, case_id",
        (subject_ref,),
    ).fetchall()
    return [
        Chat(str(case_id), date.fromisoformat(str(started)[:10]), widget)
        for case_id, started, widget in rows
    ]


def at_snapengage(chats: Sequence[Chat], today: date, snapengage_days: int) -> list[Chat]:
    """The chats SnapEngage may still hold today (ledger.store.cursor_rules.snapengage_holds)."""
    return [c for c in chats if snapengage_holds(c.started_on, today, snapengage_days)]


def decide(
    result: ErasureResult,
    chats: Sequence[Chat],
    today: date,
    snapengage_days: int,
    others: Sequence[str] = (),
) -> list[notices.Notice]:
    """The Art. 19 notices of one erasure run (pure); ``chats``: all of the person's."""
    found: list[notices.Notice] = []
    on, deleted, users = today.isoformat(), sorted(result.deleted), result.users
    gone_profile = users is not None and not users.blocked and bool(users.deleted)
    if deleted or gone_profile:
        tickets = "tickets and profile" if gone_profile else "tickets"
        how = f"snapzen deleted the data there itself ({tickets})"
        found.append(notices.Notice("Zendesk", notices.NOTIFIED, on, how))
    if held := at_snapengage(chats, today, snapengage_days):
        how = "snapzen cannot delete there: ask SnapEngage to erase chats "
        how += ", ".join(c.case_id for c in held)
        found.append(notices.Notice("SnapEngage", notices.TO_NOTIFY, on, how))
    cases = ", ".join(c.case_id for c in chats) or "of this person"
    tickets = f" (Zendesk tickets {', '.join(map(str, deleted))})" if deleted else ""
    for name in dict.fromkeys(others) if chats or deleted else ():  # each once, settings order
        how = f"snapzen never sends to {name} itself: ask {name} to erase what it holds of "
        found.append(notices.Notice(name, notices.TO_NOTIFY, on, f"{how}chats {cases}{tickets}"))
    return found


def other_recipients(settings: Settings) -> tuple[str, ...]:
    """The recipients of kind other, by name, each once: ``[transfer] recipients`` with
    ``system = "other"``, then ``[record] recipients``."""
    names = [r.name for r in settings.transfer.recipients if r.system is RecipientSystem.OTHER]
    return tuple(dict.fromkeys([*names, *settings.record.recipients]))
