"""The `cases` outbox, cursors (`state`) and finished backfill windows: every state change
the pass makes is one of these functions, each a single transaction, so a crash leaves the
row in a state that recovery knows how to finish. People's commands change a case through
the ledger's ``transitions``; run rows are its ``runs``; statuses its ``CaseStatus``.

    pending ──push──▶ pushing ──job result──▶ synced      (+ transfer row, same transaction)
       │                 │        └──item error──▶ failed ──(next run, attempts left)──▶ pending
       │                 └──crash / ambiguous──▶ recovery: job re-read or external_id lookup
       ├──decision──▶ withheld   (terminal; reason recorded; never sent)
       └──type───────▶ ignored    (terminal; e.g. offline messages when not synced)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events, json_text
from snapzen.ledger.evidence.events import Event, decision
from snapzen.ledger.store.case_status import (
    RETRYABLE_FAILED,
    UNSENT,
    UNSETTLED,
    CaseStatus,
    sql_list,
)
from snapzen.ledger.store.cursor_rules import next_cursor, utc_day
from snapzen.ledger.store.db import transaction
from snapzen.ledger.store.rows import chunks
from snapzen.ledger.store.transitions import ERASED_REASON, WITHHOLD_ERASED
from snapzen.support import clock
from snapzen.support.errors import FatalError

S = CaseStatus  # short: the SQL below names a status in most statements


@dataclass(frozen=True)
class StagedCase:
    """What the pipeline learned from one raw case before staging it."""

    case_id: str
    widget_id: str
    raw_json: str | None  # None only if the payload is gone (the pass then fails the case)
    started_at: datetime | None
    case_type: str | None
    error: str | None = None  # set when the payload is unusable; staged as failed
    subject_ref: str | None = None  # HMAC of the visitor email, for Art. 15/17 lookups
    # The payload carries a value for the consent variable: a case withheld for lack of one
    # is decided again (consent captured at the end of a chat arrives in a later fetch).
    consent_seen: bool = False
    name_ref: str | None = None  # HMAC of the visitor's name: tells people on one email apart


@dataclass(frozen=True)
class ReadyCase:
    case_id: str
    widget_id: str
    raw_json: str | None  # None only if the payload is gone (the pass then fails the case)
    attempts: int


def synthetic_case_id(raw_json: str) -> str:
    """A stable id for a payload that came without one, so it is still recorded."""
    return "invalid:" + hashlib.sha256(raw_json.encode("utf-8", "replace")).hexdigest()[:24]


def stage(
    db: sqlite_utils.Database,
    cases: Sequence[StagedCase],
    now: datetime,
    *,
    run_id: str | None = None,
    actor: str | None = None,
) -> int:
    """Upsert one page of cases in one transaction; returns how many rows were new. A chat
    of an erased person is withheld at once, its decision row carrying ``run_id`` and
    ``actor``.

    Cases still pending or failed get their payload refreshed (late survey data, a chat that
    was still running); pushing and terminal cases are never touched by a re-fetch.
    """
    stamp = clock.format(now)
    rows = []
    for case in cases:
        start = case.started_at
        day = start.astimezone(UTC).date().isoformat() if start else None
        status = S.FAILED if case.error else S.PENDING
        started = clock.format(start) if start else None
        rows.append(
            {**vars(case), "day": day, "started": started, "status": status, "stamp": stamp}
        )
    ids = list(dict.fromkeys(case.case_id for case in cases))
    # Not synced on its own (db.transaction): a page lost to a power cut is fetched again
    # (the cursor only moves in a later, synced commit).
    with transaction(db, durable=False) as conn:
        # One lookup per chunk of ids instead of one per case; a case id seen twice in the
        # page counts as new at most once, as with a lookup before each upsert.
        known = "SELECT count(*) FROM cases WHERE case_id IN ({})".format
        new = len(ids) - sum(
            int(conn.execute(known(marks), chunk).fetchone()[0]) for chunk, marks in chunks(ids)
        )
        conn.executemany(
            _REDECIDE_SQL,
            [
                (case.raw_json, stamp, case.case_id)
                for case in cases
                if case.consent_seen and case.error is None
            ],
        )
        conn.executemany(_STAGE_SQL, rows)
        _withhold_erased(conn, cases, stamp, run_id, actor)
    return new


def _withhold_erased(
    conn: sqlite3.Connection,
    cases: Sequence[StagedCase],
    stamp: str,
    run_id: str | None,
    actor: str | None,
) -> None:
    """A chat of a person erased under Art. 17 that started before the erasure is never sent,
    even when fetched after the erasure or after a restored backup (erased_subjects is rebuilt
    from the erasure journal). One cheap probe when nobody was erased."""
    refs = list({case.subject_ref for case in cases if case.subject_ref})
    if not refs or conn.execute("SELECT 1 FROM erased_subjects LIMIT 1").fetchone() is None:
        return
    for chunk, marks in chunks(refs):
        withheld = conn.execute(
            f"""UPDATE cases SET {WITHHOLD_ERASED} FROM erased_subjects e
                WHERE e.subject_ref = cases.subject_ref AND cases.subject_ref IN ({marks})
                  AND cases.status IN {sql_list(UNSENT)}
                  AND (cases.started_at IS NULL OR cases.started_at <= e.erased_at)
                RETURNING cases.case_id, cases.subject_ref""",
            [stamp, stamp, *chunk],
        ).fetchall()
        append_events(conn, erased_withheld(withheld, stamp, run_id=run_id, actor=actor))


def erased_withheld(
    cases: Iterable[tuple[str, str]],
    stamp: str,
    *,
    run_id: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Withheld decisions for (case_id, subject_ref) of chats of an erased person."""
    facts: dict[str, Any] = {"details": {"reason": ERASED_REASON}, "run_id": run_id}
    return [
        decision("withheld", case_id, stamp, subject_ref=ref, actor=actor, **facts)
        for case_id, ref in cases
    ]


# Withheld only because no consent value was present, and now one is: pending again with the
# new payload, so the pass decides it again and records whatever it decides then. Withheld
# for any other reason (refused, not accepted) stays final.
_REDECIDE_SQL = f"""UPDATE cases SET status = '{S.PENDING}', outcome = NULL, reason = NULL,
           raw = ?, raw_purged_at = NULL, updated_at = ?
       WHERE case_id = ? AND status = '{S.WITHHELD}' AND reason = 'no_consent_recorded'
         -- a case flagged for a person (Zendesk already holds tickets for it) waits for them
         AND NOT EXISTS (SELECT 1 FROM case_flags f
                         WHERE f.case_id = cases.case_id AND f.resolved_at IS NULL)"""


_STAGE_SQL = f"""INSERT INTO cases (case_id, widget_id, day, case_type, started_at, status,
           error, raw, first_seen_at, updated_at, subject_ref, name_ref)
       VALUES (:case_id, :widget_id, :day, :case_type, :started, :status, :error, :raw_json,
           :stamp, :stamp, :subject_ref, :name_ref)
       ON CONFLICT(case_id) DO UPDATE SET
           raw = excluded.raw,
           -- a later, broken copy of a case must not erase the start we knew:
           -- without it the case would drop out of the cursor and deadline checks
           day = COALESCE(excluded.day, cases.day),
           started_at = COALESCE(excluded.started_at, cases.started_at),
           case_type = excluded.case_type, updated_at = excluded.updated_at,
           subject_ref = COALESCE(excluded.subject_ref, cases.subject_ref),
           name_ref = COALESCE(excluded.name_ref, cases.name_ref)
       WHERE cases.status IN {sql_list(UNSENT)} AND cases.raw IS NOT NULL"""


def requeue_failed(db: sqlite_utils.Database, max_attempts: int, now: datetime) -> int:
    """Failed cases with attempts left go back to pending at the start of a run."""
    with transaction(db) as conn:
        cursor = conn.execute(
            f"""UPDATE cases SET status = '{S.PENDING}', updated_at = ?
               WHERE {RETRYABLE_FAILED} AND attempts < ?""",
            (clock.format(now), max_attempts),
        )
        return cursor.rowcount


# Pending, and the chat started before the bound (finished): what a batch may take.
_READY = f"status = '{S.PENDING}' AND started_at IS NOT NULL AND started_at <= ?"


def ready_cases(
    db: sqlite_utils.Database, settled_before: datetime, limit: int, *, exclude: Sequence[str] = ()
) -> list[ReadyCase]:
    """Pending cases whose chat started before ``settled_before`` (finished), oldest first,
    but those in ``exclude``."""
    marks = ", ".join("?" * len(exclude))
    rows = db.execute(
        f"SELECT case_id, widget_id, raw, attempts FROM cases WHERE {_READY} "
        f"AND case_id NOT IN ({marks}) ORDER BY started_at, case_id LIMIT ?",
        [clock.format(settled_before), *exclude, limit],
    )
    return [ReadyCase(*row) for row in rows]


def count_ready(db: sqlite_utils.Database, settled_before: datetime, cap: int) -> int:
    """How many cases ``ready_cases`` could return, counting no further than ``cap``
    (cheap: walks the cases_ready index; lets a pass push while still fetching
    without sending half-empty batches)."""
    row = db.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM cases WHERE {_READY} LIMIT ?)",
        (clock.format(settled_before), cap),
    ).fetchone()
    return int(row[0])


def set_terminal_many(
    db: sqlite_utils.Database,
    items: Iterable[tuple[Any, ...]],
    now: datetime,
    *,
    run_id: str | None = None,
    actor: str | None = None,
) -> int:
    """(case_id, status, outcome, reason, subject_ref[, facts]) with status withheld or
    ignored: terminal without a push, so the raw payload leaves the database in the same
    write, and the decision is chained in it (``facts``: more columns for that row, e.g.
    origin_country and the consent evidence). ``run_id`` and ``actor``: the run that decided,
    carried by every decision row. Returns the number of decision rows appended."""
    stamp = clock.format(now)
    rows = []
    # Not synced on its own (db.transaction): lost to a power cut, the case is pending again
    # and decided again, its decision row lost with it; nothing left the machine for it.
    with transaction(db, durable=False) as conn:
        for case_id, status, outcome, reason, subject, *rest in items:
            if status not in (S.WITHHELD, S.IGNORED):
                raise ValueError(f"not a terminal status without push: {status}")
            conn.execute(
                """UPDATE cases SET status = ?, outcome = ?, reason = ?, subject_ref = ?,
                       error = NULL, raw = NULL, raw_purged_at = ?, updated_at = ?
                   WHERE case_id = ?""",
                (status, outcome, reason, subject, stamp, stamp, case_id),
            )
            facts: dict[str, Any] = {"run_id": run_id, "actor": actor, **(rest[0] if rest else {})}
            details = {"reason": reason, "outcome": outcome, **(facts.get("details") or {})}
            facts["details"] = details
            rows.append(decision(status, case_id, stamp, subject_ref=subject, **facts))
        append_events(conn, rows)
    return len(rows)


def mark_failed(
    db: sqlite_utils.Database,
    failures: Mapping[str, str],
    now: datetime,
    *,
    max_attempts: int | None = None,
    run_id: str | None = None,
    actor: str | None = None,
) -> int:
    """Record per-case failures (one line each); attempts grow so retries are bounded. A
    case whose attempts reach ``max_attempts`` failed for good: that decision is chained,
    with ``run_id`` and ``actor``. Returns the number of decision rows appended."""
    stamp = clock.format(now)
    with transaction(db) as conn:
        final = []
        for case_id, error in failures.items():
            row = conn.execute(
                f"""UPDATE cases SET status = '{S.FAILED}', error = ?, attempts = attempts + 1,
                       batch_id = NULL, job_id = NULL, updated_at = ?
                   WHERE case_id = ? RETURNING attempts, widget_id, subject_ref""",
                (error[:500], stamp, case_id),
            ).fetchone()
            if max_attempts is not None and row is not None and row[0] >= max_attempts:
                details = {"attempts": row[0], "error": error[:200]}
                facts: dict[str, Any] = {"run_id": run_id, "actor": actor, "details": details}
                columns = {"widget_id": row[1], "subject_ref": row[2]}
                final.append(decision("failed", case_id, stamp, **columns, **facts))
        append_events(conn, final)
    return len(final)


def mark_pushing(
    db: sqlite_utils.Database,
    batch_id: str,
    drafts: Mapping[str, Mapping[str, Any]],
    now: datetime,
    run_id: str,
) -> None:
    """Write-ahead intent: these cases are about to be POSTed as ``batch_id``.

    ``drafts`` maps case id → {outcome, legal_basis, subject_ref, transfer (ledger fields or
    None), batch_index}; stored so recovery can finish the case without re-deciding."""
    batch = {"batch_id": batch_id, "stamp": clock.format(now), "run_id": run_id}
    rows = [
        {**draft, **batch, "case_id": case_id, "draft": draft_text(draft)}
        for case_id, draft in drafts.items()
    ]
    with transaction(db) as conn:
        cursor = conn.executemany(
            f"""UPDATE cases SET status = '{S.PUSHING}', batch_id = :batch_id, job_id = NULL,
                   pushed_at = :stamp, outcome = :outcome, legal_basis = :legal_basis,
                   subject_ref = :subject_ref, transfer_draft = :draft, updated_at = :stamp,
                   run_id = :run_id
               WHERE case_id = :case_id AND status = '{S.PENDING}'""",
            rows,
        )
        # Cases are decided before their batch is recorded: one that is no longer pending
        # here (a bug, or a writer ignoring the lock) could be a second ticket.
        # Nothing is written and nothing sent; the run aborts and the next one decides again.
        if cursor.rowcount != len(rows):
            raise FatalError(
                f"batch {batch_id}: {len(rows) - cursor.rowcount} of its {len(rows)} cases are "
                "no longer pending; nothing was sent"
            )


def draft_text(draft: Mapping[str, Any]) -> str:
    """The stored ``transfer_draft``: JSON that reads back (``json.loads``) as the value
    ``json.dumps(draft, sort_keys=True, default=str)`` reads back as (only that value is used,
    never the text; orjson writes plain JSON values ~10x faster, chain.json_text)."""
    return json_text(draft, default=str)


def set_job_id(db: sqlite_utils.Database, batch_id: str, job_id: str) -> None:
    # Not synced on its own (db.transaction): lost to a power cut, the batch is 'pushing'
    # without a job id, which recovery settles by looking its tickets up by external id.
    with transaction(db, durable=False) as conn:
        conn.execute(
            f"UPDATE cases SET job_id = ? WHERE batch_id = ? AND status = '{S.PUSHING}'",
            (job_id, batch_id),
        )


@dataclass(frozen=True)
class PushingBatch:
    batch_id: str
    job_id: str | None  # one job id and push time per batch: mark_pushing sets them together
    pushed_at: datetime
    case_ids: list[str]  # in batch index order


def pushing_batches(db: sqlite_utils.Database) -> list[PushingBatch]:
    batches: dict[str, PushingBatch] = {}
    for batch_id, job_id, pushed_at, case_id in db.execute(
        f"""SELECT batch_id, job_id, pushed_at, case_id FROM cases WHERE status = '{S.PUSHING}'
           ORDER BY batch_id, COALESCE(json_extract(transfer_draft, '$.batch_index'), 0), case_id"""
    ):
        if batch_id not in batches:
            batches[batch_id] = PushingBatch(batch_id, job_id, clock.parse(pushed_at), [])
        batches[batch_id].case_ids.append(case_id)
    return list(batches.values())


def back_to_pending(db: sqlite_utils.Database, case_ids: Iterable[str], now: datetime) -> None:
    """Recovery proved the POST never created these tickets: they go out again."""
    stamp = clock.format(now)
    with transaction(db) as conn:
        conn.executemany(
            f"""UPDATE cases SET status = '{S.PENDING}', batch_id = NULL, job_id = NULL,
                   updated_at = ? WHERE case_id = ? AND status = '{S.PUSHING}'""",
            [(stamp, case_id) for case_id in case_ids],
        )


def record_synced(
    db: sqlite_utils.Database,
    synced: Mapping[str, int],
    now: datetime,
    *,
    run_id: str,
    actor: str,
) -> tuple[int, int]:
    """Mark cases synced with their ticket ids and append their transfer rows, all in ONE
    transaction: either both the status and the ledger row exist, or neither does.
    Returns (ledger rows appended: decisions `transfer` or `sent`, of which `transfer`)."""
    stamp = clock.format(now)
    ids = list(synced)
    appended = 0
    transfers = 0
    with transaction(db) as conn:
        # A chunk of ids at a time (one lookup, one statement for its updates, its ledger rows
        # appended in the order of ``synced``, exactly as one append_events per case would),
        # all in the one transaction: a poll that finds 25 jobs done records 2,500 cases, and
        # building all their rows at once held ~5 MB more at the peak (bench/RESULTS.md v8).
        for chunk, marks in chunks(ids):
            # case id -> (status, transfer draft, widget id)
            found = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT case_id, status, transfer_draft, widget_id FROM cases "
                    f"WHERE case_id IN ({marks})",
                    chunk,
                )
            }
            events: list[dict[str, Any]] = []
            updates: list[tuple[int, str, str, str, str]] = []
            for case_id in chunk:
                row = found.get(case_id)
                if row is None or row[0] == S.SYNCED:
                    continue  # already recorded (e.g. by an earlier recovery)
                draft = json.loads(row[1]) if row[1] else {}
                facts = {"ticket_id": synced[case_id], "run_id": run_id, "actor": actor}
                if draft.get("transfer"):
                    where = {"case_id": case_id, "recorded_at": stamp, "event": Event.TRANSFER}
                    events.append({**draft["transfer"], **facts, **where})
                else:
                    # Sent, but not a restricted transfer: still a decision to chain, with (since
                    # issue 26) the regime and the controller's country that explain why.
                    why = draft.get("not_restricted_facts") or {}
                    why = {"reason": draft.get("not_restricted_reason"), **why}
                    facts |= {"subject_ref": draft.get("subject_ref"), "widget_id": row[2]}
                    basis = draft.get("legal_basis")
                    events.append(
                        decision(
                            Event.SENT, case_id, stamp, details=why, legal_basis=basis, **facts
                        )
                    )
                updates.append((synced[case_id], stamp, stamp, stamp, case_id))
            # Updates first: the pages the purged payloads free are reused by the ledger rows.
            conn.executemany(
                f"""UPDATE cases SET status = '{S.SYNCED}', ticket_id = ?, synced_at = ?,
                       error = NULL, raw = NULL, raw_purged_at = ?, updated_at = ?
                   WHERE case_id = ?""",
                updates,
            )
            append_events(conn, events)
            appended += len(events)
            transfers += sum(1 for event in events if event["event"] == Event.TRANSFER)
    return appended, transfers


# ---------------------------------------------------------------- cursors


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def get_cursor(db: sqlite_utils.Database, widget_id: str) -> date | None:
    row = db.execute("SELECT cursor_day FROM state WHERE widget_id = ?", (widget_id,)).fetchone()
    return _day(row[0]) if row else None


def advance_cursor(
    db: sqlite_utils.Database, widget_id: str, fetched_until: date, max_attempts: int, now: datetime
) -> date | None:
    """Move the cursor to the first day that still has an unfinished case (or past the window),
    never past the newest chat read nor past today UTC (``cursor_rules.next_cursor``); None
    while no chat was ever read for the widget.

    Unfinished = pending, pushing, or failed with attempts left. Failed cases that exhausted
    their attempts keep their payload for `snapzen retry` and do not hold the cursor."""
    today = utc_day(now)
    # holding: the first day with an unfinished case; newest: the newest day read, to today
    holding, newest = db.execute(
        f"""SELECT MIN(CASE WHEN status IN {sql_list(UNSETTLED)}
                             OR (status = '{S.FAILED}' AND attempts < ?) THEN day END),
                   MAX(CASE WHEN day <= ? THEN day END)
            FROM cases WHERE widget_id = ? AND day IS NOT NULL""",
        (max_attempts, today.isoformat(), widget_id),
    ).fetchone()
    current = get_cursor(db, widget_id)
    new = next_cursor(
        current=current,
        fetched_until=fetched_until,
        holding=_day(holding),
        newest_read=_day(newest),
        today=today,
    )
    if new is not None:
        row = {
            "widget_id": widget_id,
            "cursor_day": new.isoformat(),
            "updated_at": clock.format(now),
        }
        db.table("state").upsert(row, pk="widget_id")  # one statement: atomic on its own
    return new


def mark_backfill_finished(
    db: sqlite_utils.Database,
    windows: dict[str, int],
    day: date,
    *,
    run_id: str,
    actor: str,
    now: datetime,
) -> None:
    """Record ``{widget: fetched}`` for ``day`` in `backfill_windows` (a rerun of `snapzen
    backfill` skips them), in one transaction."""
    done = {
        "day": day.isoformat(),
        "run_id": run_id,
        "actor": actor,
        "finished_at": clock.format(now),
    }
    rows = [{"widget_id": w, "fetched": n, **done} for w, n in windows.items()]
    db.table("backfill_windows").upsert_all(rows, pk=("widget_id", "day"))
