"""Forgetting a month of chats once every ticket of it has expired (issue 27, item 4), and
a request period once its evidence has served (snapzen.ledger.rights.request_periods: the
rule; the steps below are the same for both).

A period (``YYYY-MM``, the UTC month of chat start; snapzen.ledger.rights.period_keys) can be
forgotten when its retention has ended for its last day, none of its cases is still being
sent (pending, pushing) or has a live ticket (synced without ``expired_at``: every ticket was
deleted by the sweep or erased), and no legal hold names one of its cases, tickets or
people. Forgetting it is, in this order:

1. a ``period_forgotten`` line in the rights journal (outside the database, so a restored
   backup cannot bring the period back: ``reapply``);
2. one transaction: the period's key deleted (``period_keys``), its ``subject_periods`` and
   ``cases`` rows deleted (a request period: its ``erased_subjects`` rows instead), and a
   chained ``period_forgotten`` event with the period, the counts and the case or request
   ids, never a reference.

3. a request period: the rights journal rewritten without its requests' ``request`` and
   ``erasure`` lines, which carry the lookup reference (``compact_journal``,
   snapzen.ledger.rights.journal_file); the ``period_forgotten`` lines stay.

A crash after 1 leaves the journal ahead of the database: the next sweep (or a restore)
finishes the period from the journal. Step 2 is atomic: a crash inside it leaves the key,
the cases and the chain as they were. A crash before 3 leaves the lines in the journal: the
next sweep (or restore) removes them. The chain's rows stay and still verify.
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import erasure_journal, journal_file, period_keys, request_periods
from snapzen.ledger.rights.erasure_journal import FORGOTTEN, forgotten_requests
from snapzen.ledger.rights.holds import HoldSet
from snapzen.ledger.rights.period_keys import has_tables, is_request_period
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.db import transaction
from snapzen.policy.transform import add_years
from snapzen.support import clock

Hook = Callable[[str], None]
EVENT = str(Event.PERIOD_FORGOTTEN)


def past_retention(period: str, as_of: date, years: int) -> bool:
    """True when the retention of a chat on the period's last day ended by ``as_of``."""
    year, month = int(period[:4]), int(period[5:7])
    last = date(year, month, calendar.monthrange(year, month)[1])
    return add_years(last, years) <= as_of


def _kept(
    conn: sqlite3.Connection, period: str, held: HoldSet, assume_expired: Collection[str]
) -> tuple[int, bool]:
    """(cases of the period, True when one of them keeps the period)."""
    rows = conn.execute(
        """SELECT case_id, status, ticket_id, expired_at, subject_ref FROM cases
           WHERE day >= ? AND day < ?""",
        (period + "-01", period + "-32"),
    ).fetchall()
    for case_id, status, ticket_id, expired_at, subject in rows:
        if status in (CaseStatus.PENDING, CaseStatus.PUSHING):
            return len(rows), True
        live = status == CaseStatus.SYNCED and ticket_id is not None and expired_at is None
        if live and case_id not in assume_expired:
            return len(rows), True
        if held.held(case_id=case_id, ticket_id=ticket_id, subject=subject):
            return len(rows), True
    return len(rows), False


def plan(
    conn: sqlite3.Connection,
    as_of: date,
    years: int,
    held: HoldSet,
    assume_expired: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The periods a sweep as of ``as_of`` forgets: [{period, cases}], oldest first.
    ``assume_expired``: cases whose tickets this sweep is about to delete (a dry run)."""
    found = []
    for period in period_keys.held(conn) if has_tables(conn) else []:
        # months only; request periods: request_periods.plan
        if is_request_period(period) or not past_retention(period, as_of, years):
            continue
        count, kept = _kept(conn, period, held, assume_expired)
        if not kept:
            found.append({"period": period, "cases": count})
    return found


def forgotten(conn: sqlite3.Connection) -> dict[str, str]:
    """{period: day it was forgotten} from the chain (the latest event of each period)."""
    rows = conn.execute(
        "SELECT recorded_at, details FROM events WHERE event = ? ORDER BY seq", (EVENT,)
    ).fetchall()
    found: dict[str, str] = {}
    for at, details in rows:
        period = str(orjson.loads(details or "{}").get("period", ""))
        if period:
            found[period] = str(at)[:10]
    return found


def _delete(conn: sqlite3.Connection, period: str, hook: Hook) -> tuple[int, list[str], int]:
    """(key destroyed, case ids deleted, index rows deleted), inside the caller's
    transaction. A case's flags stay: they are evidence tables verify compares."""
    key = conn.execute("DELETE FROM period_keys WHERE period = ?", (period,)).rowcount
    hook("after_key_destroyed")
    if is_request_period(period):
        return key, [], 0
    bounds = (period + "-01", period + "-32")
    cases = conn.execute(
        "DELETE FROM cases WHERE day >= ? AND day < ? RETURNING case_id", bounds
    ).fetchall()
    refs = conn.execute("DELETE FROM subject_periods WHERE period = ?", (period,)).rowcount
    return key, sorted(str(row[0]) for row in cases), refs


def forget_period(
    db: sqlite_utils.Database,
    period: str,
    *,
    now: datetime,
    actor: str,
    run_id: str | None,
    how: str = "retention sweep",
    hook: Hook | None = None,
) -> dict[str, Any]:
    """Step 2: destroy the period's key, delete its cases and index rows, chain the event."""
    with transaction(db) as conn:
        request = request_periods.delete(conn, period) if is_request_period(period) else None
        key, cases, refs = _delete(conn, period, hook or (lambda _point: None))
        # Which `cases` rows went (verify accepts them gone); ids only, never a reference.
        counts = {"cases_forgotten": len(cases), "case_ids": cases, "references_unlinked": refs}
        details = {"period": period, **(counts if request is None else request)}
        details |= {"key_destroyed": bool(key), "by": how}
        append_events(
            conn,
            event=EVENT,
            case_id=f"period:{period}",
            recorded_at=clock.format(now),
            run_id=run_id,
            actor=actor,
            details=details,
        )
    return details


def journal(
    path: Path, key: bytes, period: str, now: datetime, request_ids: Collection[str] = ()
) -> None:
    """Step 1: the period in the rights journal (the caller holds the writer lock); a
    request period with its request ids, so a restore does not re-append their lines."""
    line: dict[str, Any] = {"period": period, "at": clock.format(now)}
    if request_ids:
        line["request_ids"] = sorted(request_ids)
    journal_file.append(path, key, [(FORGOTTEN, line)])


def reapply(
    db: sqlite_utils.Database, wanted: Mapping[str, str], *, now: datetime, actor: str, how: str
) -> list[dict[str, Any]]:
    """Forget again every period ``wanted`` (``{period: when}``, as the journals and a
    replaced ledger's chain say) that the database has not (or no longer) forgotten: no
    chained event, or a key, cases or index rows still there (a restored backup, a crash after
    step 1). The journal wins over a restored backup."""
    if not has_tables(db.conn):
        return []
    chained, remaining = forgotten(db.conn), set(period_keys.held(db.conn))
    return [
        forget_period(db, period, now=now, actor=actor, run_id=None, how=how)
        for period in sorted(p for p in wanted if p not in chained or p in remaining)
    ]


def compact_journal(conn: sqlite3.Connection, path: Path, key: bytes, now: datetime) -> int:
    """Step 3, after the transaction: the rights journal rewritten without the request and
    erasure lines (lookup references) of every request whose period both the journal and the
    chain record as forgotten (snapzen.ledger.rights.journal_file). Idempotent: it
    also finishes a sweep killed before it; returns the lines removed."""
    lines = journal_file.read(path, key, vouched=None)
    gone = erasure_journal.contents_of(path, lines).forgotten_requests
    return journal_file.compact(path, key, lines, gone & forgotten_requests(conn), now)


def _by_kind(conn: sqlite3.Connection) -> dict[bool, dict[str, str]]:
    """{is a request period: {YYYY-MM: day forgotten}} from the chain (empty: unreadable)."""
    try:
        found = forgotten(conn)
    except sqlite3.Error:
        return {False: {}, True: {}}
    return {
        kind: {
            p.removeprefix("req-"): at for p, at in found.items() if is_request_period(p) == kind
        }
        for kind in (False, True)
    }


def _span(months: list[str], name: Callable[[str], str] = str) -> str:
    first, last = name(months[0]), name(months[-1])
    return first if first == last else f"{first} to {last}"


def note(conn: sqlite3.Connection) -> str | None:
    """Why a lookup may find nothing: one line naming the forgotten months, or None."""
    kinds = _by_kind(conn)
    lines = [
        f"{what} {_span(sorted(kinds[kind]))} were forgotten on {max(kinds[kind].values())} "
        "per the retention policy"
        for kind, what in (
            (False, "chats that started in"),
            (True, "requests and their answers recorded in"),
        )
        if kinds[kind]
    ]
    if not lines:
        return None
    return "; ".join(lines) + ": what was recorded about a person then can no longer be found"


def _month_words(period: str) -> str:
    """``2024-01`` -> ``January 2024``."""
    return date(int(period[:4]), int(period[5:7]), 1).strftime("%B %Y")


def summary(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """What the ledger has forgotten, for an access pack: the months and request periods
    (codes, for subject.json) and the same in plain sentences for the person; None when
    nothing was forgotten."""
    kinds = _by_kind(conn)
    months, asked = sorted(kinds[False]), sorted(kinds[True])
    if not months and not asked:
        return None
    sentences = []
    if months:
        sentences.append(
            "We no longer hold anything about chats that started in "
            f"{_span(months, _month_words)}. "
            "When their retention period ended we destroyed the key that linked our records "
            "of them to a person, so we cannot tell whether any of them was yours, and "
            "there is nothing of them we could give you."
        )
    if asked:
        sentences.append(
            f"What we recorded in {_span(asked, _month_words)} about the requests people made "
            "and how we answered them was unlinked from those people in the same way, once we no "
            "longer needed it to answer a complaint or a claim."
        )
    return {
        "months": months,
        "request_periods": asked,
        "forgotten_on": max([*kinds[False].values(), *kinds[True].values()]),
        "explanation": " ".join(sentences),
    }
