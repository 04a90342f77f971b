"""Re-applying the rights journal to a restored or adopted ledger.

``reapply`` brings a ledger up to date with erasures and request events it does not know:

- ``erased_subjects`` gets the person again, so a chat of theirs that started before the
  erasure is withheld when it is fetched (``outbox.stage``) instead of sent (a narrowed
  erasure names its chats instead: the other people behind a shared email stay untouched);
- their pending or failed chats in the ledger become withheld;
- every ticket the journal says was deleted gets an ``erased`` event (``reapplied: true``)
  when the chain lacks one, so the sweep, access packs and reports see it gone;
- every request event the chain lacks is appended again (``reapplied: true``, its original
  time), so ``ledger requests`` lists it with its received date, deadline and outcome.

``restore_union`` is what ``ledger restore`` and ``init --adopt`` call: the journal (the
operator's choice, ``JournalChoice``) united with the replaced ledger's own record, applied,
and the live journal completed with what only the replaced ledger knew. Re-applying twice
changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import erasure_journal as journal
from snapzen.ledger.rights import forget, journal_file, period_keys
from snapzen.ledger.rights.erasure_journal import JournalEntry, RequestLine
from snapzen.ledger.store import outbox
from snapzen.ledger.store.case_status import UNSENT, CaseStatus, sql_list
from snapzen.ledger.store.db import transaction
from snapzen.ledger.store.identity import chain_binding
from snapzen.ledger.store.transitions import ERASED_REASON, WITHHOLD_ERASED
from snapzen.support import clock
from snapzen.support.errors import ConfigError
from snapzen.support.sqlite_uri import read_only_uri


@dataclass
class ReapplyResult:
    entries: int = 0
    withheld: int = 0  # pending/failed chats withheld again
    events: int = 0  # `erased` events appended for tickets the restored chain lacked
    in_flight: list[str] = field(default_factory=list)  # pushing: erase again after a sync
    requests: int = 0  # request events appended that the chain lacked
    from_replaced: int = 0  # erasures and requests only the replaced ledger knew
    no_journal: bool = False  # --no-erasure-journal: the operator's statement is chained


@dataclass(frozen=True)
class JournalChoice:
    """Where a restore or adoption reads erasures from: ``path`` (None: the operator stated
    with --no-erasure-journal that there is none), ``live`` (the configured journal, which
    future erasures append to)."""

    path: Path | None
    live: Path
    key: bytes


def choose(
    live: Path, key: bytes, given: Path | None, no_journal: bool, command: str
) -> JournalChoice:
    """The journal to use, checked before anything else happens (exit 2 otherwise)."""
    if given is not None and no_journal:
        raise ConfigError("give --erasure-journal FILE or --no-erasure-journal, not both")
    if no_journal:
        return JournalChoice(None, live, key)
    path = given or live
    if not path.is_file():
        raise ConfigError(
            f"{command}: no erasure journal at {path}: without it, people erased since would "
            "be sent again. Give the newest copy with --erasure-journal FILE (the checkpoint "
            "copy, CHECKPOINT.erasures.jsonl), or --no-erasure-journal to state (recorded in "
            "the ledger) that nobody was erased and no request was made"
        )
    journal_file.read(path, key, vouched=None)  # MACs and chain, now
    return JournalChoice(path, live, key)


def remember_subject(conn: Any, subject_ref: str, erased_at: str, request_id: str) -> None:
    """Inside the caller's transaction: later erasures move ``erased_at`` forward only."""
    conn.execute(
        """INSERT INTO erased_subjects (subject_ref, erased_at, request_id) VALUES (?, ?, ?)
           ON CONFLICT(subject_ref) DO UPDATE SET erased_at = excluded.erased_at,
               request_id = excluded.request_id
           WHERE excluded.erased_at > erased_subjects.erased_at""",
        (subject_ref, erased_at, request_id),
    )


def reapply(
    db: sqlite_utils.Database,
    entries: Iterable[JournalEntry],
    *,
    requests: Iterable[RequestLine] = (),
    actor: str = "restore",
    now: datetime | None = None,
    forgotten: Iterable[str] = (),
) -> ReapplyResult:
    """Bring a (restored) ledger up to date with the journal, in one transaction. The caller
    holds the writer lock (a sync must not stage in between). The requests of a forgotten
    request period (``forgotten``, and the ledger's own chain) are not brought back."""
    stamp = clock.format(now or clock.now())
    result = ReapplyResult()
    gone = {*forgotten, *journal.forgotten_requests(db.conn)}
    entries = [_without_forgotten_chats(db.conn, e) for e in entries if e.request_id not in gone]
    requests = [r for r in requests if r.request_id not in gone]
    with transaction(db) as conn:
        result.entries = len(entries)
        for entry in entries:
            _apply_erasure(conn, entry, result, actor, stamp)
        known = {line.identity() for line in journal.ledger_requests(conn)}
        for line in sorted(requests, key=lambda r: r.at):
            if line.identity() in known:
                continue
            known.add(line.identity())
            append_events(
                conn,
                event=line.event,
                case_id=line.request_id,
                subject_ref=line.subject_ref,
                recorded_at=line.at,  # when it happened, not when re-applied
                actor=line.actor or actor,
                details={**line.details, "reapplied": True},
                **({"recipient": line.recipient} if line.recipient else {}),
            )
            result.requests += 1
    return result


def _without_forgotten_chats(conn: sqlite3.Connection, entry: JournalEntry) -> JournalEntry:
    """A narrowed erasure without the chats of months the chain forgot: a placeholder row
    would bring their case back (their tickets' `erased` rows are already chained)."""
    if not entry.narrowed or not entry.cases:
        return entry
    try:
        gone = {str(r[0]) for r in conn.execute(f"SELECT * FROM {period_keys.FORGOTTEN_CASES_SQL}")}
    except sqlite3.Error:
        return entry
    cases = [c for c in entry.cases if c not in gone]
    widgets = {c: w for c, w in entry.widgets.items() if c not in gone}
    return replace(entry, cases=cases, widgets=widgets)


def _apply_erasure(
    conn: sqlite3.Connection, entry: JournalEntry, result: ReapplyResult, actor: str, stamp: str
) -> None:
    dated, dated_params = "", []
    if entry.narrowed:  # those chats only: the reference is shared by other people
        scope = f"case_id IN ({', '.join('?' for _ in entry.cases) or 'NULL'})"
        params: list[str] = list(entry.cases)
    else:
        remember_subject(conn, entry.subject_ref, entry.erased_at, entry.request_id)
        scope, params = "subject_ref = ?", [entry.subject_ref]
        dated, dated_params = " AND (started_at IS NULL OR started_at <= ?)", [entry.erased_at]
    withheld = conn.execute(
        f"""UPDATE cases SET {WITHHOLD_ERASED} WHERE {scope}{dated} AND status IN {sql_list(UNSENT)}
           RETURNING case_id, subject_ref""",
        [stamp, stamp, *params, *dated_params],
    ).fetchall()
    if entry.narrowed:  # a chat the ledger has never seen: withheld before it is fetched
        withheld += _placeholders(conn, entry, stamp)
    append_events(conn, outbox.erased_withheld(withheld, stamp, actor=actor))  # chained
    result.withheld += len(withheld)
    pushing = conn.execute(
        f"SELECT case_id FROM cases WHERE {scope} AND status = ?", [*params, CaseStatus.PUSHING]
    )
    result.in_flight.extend(str(row[0]) for row in pushing)
    recorded = "SELECT 1 FROM events WHERE ticket_id = ? AND event IN ('erased', 'expired')"
    details = {"reason": entry.reason, "ticket_deleted": True, "reapplied": True}
    details |= {"erased_at": entry.erased_at, "request_id": entry.request_id}
    for ticket_id in entry.tickets:
        if conn.execute(recorded, (ticket_id,)).fetchone() is not None:
            continue  # the chain records the ticket gone already
        case = conn.execute(
            "SELECT case_id, widget_id FROM cases WHERE ticket_id = ?", (ticket_id,)
        ).fetchone()
        append_events(
            conn,
            event=Event.ERASED,
            case_id=str(case[0]) if case else f"ticket:{ticket_id}",
            widget_id=case[1] if case else None,
            subject_ref=entry.subject_ref,
            ticket_id=ticket_id,
            recorded_at=stamp,
            actor=actor,
            details=details,
        )
        result.events += 1


def _placeholders(conn: sqlite3.Connection, entry: JournalEntry, stamp: str) -> list[Any]:
    """Withheld rows for the narrowed erasure's chats the ledger lacks (a backup older than
    them): staging never updates a withheld case, so a later fetch cannot send them."""
    insert = f"""INSERT INTO cases (case_id, widget_id, status, reason, subject_ref,
               raw_purged_at, first_seen_at, updated_at)
           VALUES (:case, :widget, '{CaseStatus.WITHHELD}', :reason, :ref, :at, :at, :at)
           ON CONFLICT(case_id) DO NOTHING RETURNING case_id, subject_ref"""
    fixed = {"reason": ERASED_REASON, "ref": entry.subject_ref, "at": stamp}
    return [
        row
        for case_id in entry.cases
        for row in conn.execute(
            insert, {**fixed, "case": case_id, "widget": entry.widgets.get(case_id, "")}
        )
    ]


# --- restore and adoption ----------------------------------------------------------------


def _replaced(path: Path | None) -> journal.Contents:
    """What the ledger being replaced knows of itself: its erasures and request events, the
    periods and request ids it forgot. Nothing when there is no ledger to replace; what could
    be read when it is damaged: then the journal alone speaks, as the operator was told."""
    found = journal.Contents()
    if path is None or not path.is_file():
        return found
    with suppress(sqlite3.Error), closing(sqlite3.connect(read_only_uri(path), uri=True)) as conn:
        found.forgotten_requests = journal.forgotten_requests(conn)
        found.forgotten = forget.forgotten(conn)
        record = journal.ledger_record(conn)  # its request events read once
        found.erasures, found.requests = record.erasures, record.requests
    return found


def restore_union(
    db: sqlite_utils.Database,
    choice: JournalChoice,
    replaced: Path | None,
    *,
    now: datetime,
    actor: str,
    command: str,
) -> ReapplyResult:
    """Apply the journal united with the replaced ledger's own erasures and requests (the
    caller holds the writer lock, before any sync runs on ``db``); then complete the live
    journal with what only the replaced ledger knew, so the next restore has it too, and
    forget again every period the journals or the replaced ledger forgot."""
    with transaction(db) as conn:  # a ledger bound before bindings were chained
        chain_binding(conn, now, command)
    old = _replaced(replaced)
    vouched = [*old.erasures, *journal.ledger_erasures(db.conn)]
    sources = [p for p in dict.fromkeys((choice.path, choice.live)) if p and p.is_file()]
    read = {path: journal.read(path, choice.key, known=vouched) for path in sources}
    found = reduce(journal.Contents.union, read.values(), journal.Contents())
    merged = found.union(old)
    gone = merged.forgotten_requests
    result = reapply(
        db, merged.erasures, requests=merged.requests, actor=actor, now=now, forgotten=gone
    )
    result.from_replaced = len(merged.erasures + merged.requests) - len(
        found.erasures + found.requests
    )
    if choice.path is None:
        result.no_journal = True
        statement = (
            "no erasure journal: the operator states that nobody was erased and no "
            "data-subject request was made outside this ledger"
        )
        with transaction(db) as conn:
            append_events(
                conn,
                event=Event.OPERATOR_STATEMENT,
                case_id="erasure-journal",
                recorded_at=clock.format(now),
                actor=actor,
                details={"command": command, "statement": statement},
            )
    # The live journal gets back what only the replaced ledger knew (never a line of a
    # forgotten request: an older journal copy still holds them), and every period forgotten.
    live = read.get(choice.live, journal.Contents())
    if choice.live.is_file():
        journal.migrate(choice.live, choice.key, vouched)
    kept = journal.Contents(
        [e for e in merged.erasures if e.request_id not in gone],
        [r for r in merged.requests if r.request_id not in gone],
        merged.forgotten,
    )
    journal.append(choice.live, choice.key, kept.lacking_in(live))
    forget.reapply(db, merged.forgotten, now=now, actor=actor, how=command)
    forget.compact_journal(db.conn, choice.live, choice.key, now)
    return result
