"""Do the working tables still say what the chain says?

The chain is tamper-evident; ``cases`` and ``runs`` are not, and they are what the product
acts on (a case marked synced is never sent; a ticket id is what the retention sweep and
erasure delete). Each decision is chained (``snapzen.ledger.evidence.events.decision``), so
``verify`` can compare: a withheld case marked synced, a ``ticket_id`` pointed elsewhere, a
deleted case, a runs row edited or deleted, or a terminal case or finished run that the
chain never recorded (when decided after the decision log began) are each named; so are rows
deleted or edited in the other tables verify and restore rely on (``ledger_meta``,
``erased_subjects``, ``case_flags``), with the table's name: plain tables, but what they
must hold is also in the chain (``ledger_bound``, erasure ``request`` events,
``case_flagged``, ``case_flag_resolved``: a flag closed by hand is named). Holds and
requests have no table of their own: they are read from the chain itself.

A case deleted because the retention sweep forgot its month is not a disagreement: the
chained ``period_forgotten`` event lists it (snapzen.ledger.rights.forget).

Cases decided before the decision log existed have no decision row; they are counted, not
judged, since the chain cannot say anything about them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from snapzen.ledger.evidence.events import DECISIONS_SQL, STATUS_AFTER, Event
from snapzen.ledger.evidence.events_table import columns
from snapzen.ledger.evidence.verify import Problem
from snapzen.ledger.rights.period_keys import (
    FORGOTTEN_CASES_SQL,
    FORGOTTEN_REQUESTS_SQL,
    Resolver,
)
from snapzen.ledger.rights.requests import EVENT as REQUEST_EVENT
from snapzen.ledger.rights.requests import is_erasure_record
from snapzen.ledger.store.case_status import TERMINAL, UNSENT_OR_PUSHING, CaseStatus, sql_list
from snapzen.ledger.store.identity import BOUND, chained_binding, read_meta, read_table
from snapzen.ledger.store.rows import rows_if_any
from snapzen.ledger.store.runs import read_run, run_digest

_TERMINAL = sql_list(TERMINAL)
# Statuses a case may pass through after a decision that did not send it: a retry, a
# re-decision when late consent arrives. Sending it again is then chained anew.
_TRANSIENT = sql_list(UNSENT_OR_PUSHING)


# At most this many disagreements are listed: a table swapped for another ledger's would
# otherwise print (and hold in memory) a line per case.
LISTED = 100


@dataclass
class Agreement:
    cases_checked: int = 0
    runs_checked: int = 0
    before_log: int = 0  # terminal cases decided before the decision log began
    # Problem.seq: the chain row the table contradicts (0: none); kind: status | ticket |
    # case_deleted | unrecorded | run_edited | run_deleted | ledger_meta | erased_subjects
    # | case_flags
    problems: list[Problem] = field(default_factory=list)
    unlisted: bool = False  # more disagreements than LISTED were found

    def add(self, seq: int, kind: str, message: str) -> None:
        if len(self.problems) < LISTED:
            self.problems.append(Problem(seq, kind, message))
        else:
            self.unlisted = True


def check_tables(conn: sqlite3.Connection) -> Agreement:
    result = Agreement()
    _check_cases(conn, result)
    _check_runs(conn, result)
    start = log_start(conn)
    _undecided_cases(conn, start, result)
    if start is not None:
        _unrecorded_runs(conn, start, result)
    _ledger_meta(conn, result)
    _erased_subjects(conn, result)
    _case_flags(conn, result)
    return result


def log_start(conn: sqlite3.Connection) -> str | None:
    """When the decision log began: the first row written in chain version 2 or later (None
    for a schema-1 ledger read without migrating: it has no chain versions, every row is v1)."""
    if "chain_version" not in columns(conn, "events", schema=""):
        return None
    row = conn.execute(
        "SELECT recorded_at FROM events WHERE chain_version >= 2 ORDER BY seq LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


# The latest decision of each case, and whether `cases` contradicts it, both in SQL: the
# covering index events_decision (case_id, event, ticket_id) answers the grouping without
# reading a record, and only disagreeing rows come back (1,000,000 cases: ~1 s instead of 9 s
# for a Python loop over every row; bench/RESULTS.md, Ledger).
_EXPECTED = (
    "CASE latest.event "
    + " ".join(f"WHEN '{event}' THEN '{status}'" for event, status in STATUS_AFTER.items())
    + " END"
)
_LATEST = f"""(SELECT case_id, max(seq) AS seq, event, ticket_id FROM events
                WHERE event IN {DECISIONS_SQL} GROUP BY case_id) AS latest"""
_DISAGREEING_SQL = f"""
    SELECT latest.seq, latest.case_id, latest.event, latest.ticket_id, c.case_id, c.status,
           c.ticket_id
    FROM {_LATEST} LEFT JOIN cases c ON c.case_id = latest.case_id
    WHERE (c.case_id IS NULL AND latest.case_id NOT IN {FORGOTTEN_CASES_SQL})
       OR ({_EXPECTED} = '{CaseStatus.SYNCED}' AND c.status = '{CaseStatus.SYNCED}'
           AND latest.ticket_id IS NOT c.ticket_id)
       OR (c.status != {_EXPECTED}
           AND ({_EXPECTED} = '{CaseStatus.SYNCED}' OR c.status NOT IN {_TRANSIENT}))
    ORDER BY latest.seq LIMIT {LISTED + 1}"""


def _check_cases(conn: sqlite3.Connection, result: Agreement) -> None:
    result.cases_checked = int(conn.execute(f"SELECT count(*) FROM {_LATEST}").fetchone()[0])
    for seq, case_id, event, chain_ticket, found, status, ticket in conn.execute(_DISAGREEING_SQL):
        if found is None:
            result.add(seq, "case_deleted", f"case {case_id} ({event}) is gone from cases")
        elif status == STATUS_AFTER[event] == CaseStatus.SYNCED:
            text = f"ticket_id is {ticket}, the chain recorded {chain_ticket} ({event})"
            result.add(seq, "ticket", f"case {case_id}: {text}")
        else:
            result.add(seq, "status", f"case {case_id} is {status}, the chain recorded {event}")


def _check_runs(conn: sqlite3.Connection, result: Agreement) -> None:
    rows = conn.execute(
        f"""SELECT t.seq, t.run_id, t.details
            FROM (SELECT case_id, max(seq) AS seq FROM events
                  WHERE case_id >= 'run:' AND case_id < 'run;' AND event = '{Event.RUN}'
                  GROUP BY case_id) AS latest
            JOIN events t ON t.seq = latest.seq"""
    ).fetchall()
    for seq, run_id, details in rows:
        result.runs_checked += 1
        values = read_run(conn, run_id)
        if values is None:
            result.add(seq, "run_deleted", f"run {run_id} is gone from runs")
        elif run_digest(values) != json.loads(details or "{}").get("digest"):
            result.add(seq, "run_edited", f"run {run_id}: its runs row was edited")


def _undecided_cases(conn: sqlite3.Connection, start: str | None, result: Agreement) -> None:
    """Terminal cases with no decision in the chain, in one scan: named when they cannot have
    been decided before the decision log began, counted otherwise.

    A ledger made by `snapzen init` had the log from its first row: every such case is
    named. An older ledger (bound on first open) had cases decided before the log, which the
    chain cannot vouch for; a case is counted as one of those only when both its decision
    time (synced_at, or raw_purged_at) and its first sighting are before the log began (or
    unknown), so backdating one of the two working-table dates is not enough to hide it."""
    from_the_start = read_meta(conn).get("bound_by") == "init"
    cases = conn.execute(
        f"""SELECT case_id, status, first_seen_at,
                   CASE status WHEN '{CaseStatus.SYNCED}' THEN synced_at ELSE raw_purged_at END
            FROM cases c
            WHERE status IN {_TERMINAL}
              AND NOT EXISTS (SELECT 1 FROM events t WHERE t.case_id = c.case_id
                              AND t.event IN {DECISIONS_SQL})
            ORDER BY case_id"""
    )
    for case_id, status, first_seen, decided_at in cases:
        after = start is not None and any(
            stamp is not None and stamp >= start for stamp in (first_seen, decided_at)
        )
        if from_the_start or after:
            result.add(0, "unrecorded", f"case {case_id} is {status}: no decision in the chain")
        else:
            result.before_log += 1


def _unrecorded_runs(conn: sqlite3.Connection, start: str, result: Agreement) -> None:
    """Finished runs since the decision log began that the chain never saw."""
    runs = conn.execute(
        f"""SELECT run_id FROM runs r WHERE finished_at >= ? AND NOT EXISTS
                (SELECT 1 FROM events t WHERE t.case_id = 'run:' || r.run_id
                 AND t.event = '{Event.RUN}')
            ORDER BY run_id LIMIT 100""",
        (start,),
    )
    for (run_id,) in runs:
        result.add(0, "unrecorded", f"run {run_id} is not in the chain (inserted?)")


# --- the tables verify and restore rely on (rows the chain cannot vouch for, written
# before these events were chained, are not judged)


def _ledger_meta(conn: sqlite3.Connection, result: Agreement) -> None:
    chained = chained_binding(conn)
    if chained is None:
        return
    seq, bound = chained
    table = read_table(conn)
    for name in BOUND:
        if table.get(name) is None:
            text = f"the {name} row is gone (chained at seq {seq})"
        elif table[name] != bound.get(name):
            text = f"{name} differs from the one chained at seq {seq}"
        else:
            continue
        result.add(seq, "ledger_meta", f"ledger_meta: {text}")


def _erased_subjects(conn: sqlite3.Connection, result: Agreement) -> None:
    """Every person a whole-reference erasure request named (not refused by a hold) must be
    in erased_subjects, erased at or after that request (unless its request period was
    forgotten: the chained ``period_forgotten`` event names the request)."""
    latest: dict[str, tuple[int, str, str]] = {}
    resolver = Resolver(conn)
    forgotten = {str(row[0]) for row in conn.execute(FORGOTTEN_REQUESTS_SQL)}
    rows = conn.execute(
        "SELECT seq, case_id, subject_ref, recorded_at, details FROM events "
        "WHERE event = ? AND subject_ref IS NOT NULL ORDER BY seq",
        (REQUEST_EVENT,),
    )
    for seq, request_id, ref, at, text in rows:
        details: dict[str, Any] = json.loads(text) if text else {}
        if not is_erasure_record(details) or details.get("narrowed"):
            continue
        if str(request_id) in forgotten:
            continue
        ref = resolver.resolve(ref, REQUEST_EVENT) or ref  # a chained ref: its person's
        if ref not in latest or str(at) >= latest[ref][2]:
            latest[ref] = (int(seq), str(request_id), str(at))
    table = (
        dict(rows_if_any(conn, "SELECT subject_ref, erased_at FROM erased_subjects"))
        if latest
        else {}
    )
    for ref, (seq, request_id, at) in sorted(latest.items(), key=lambda item: item[1][0]):
        erased_at = table.get(ref)
        if erased_at is None or str(erased_at) < at:
            how = (
                "is gone (their chats would be sent again)"
                if erased_at is None
                else "has an erasure time before the request's"
            )
            text = f"erased_subjects: the person of request {request_id} {how}"
            result.add(seq, "erased_subjects", text)


def _case_flags(conn: sqlite3.Connection, result: Agreement) -> None:
    """Every flag the chain opened must still be in case_flags, open or resolved as the
    chain last left it: a ``resolved_at`` set (or cleared) by hand, without its
    ``case_flag_resolved`` (or ``case_flagged``) event, would silence (or fake) an alarm."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    rows = conn.execute(
        "SELECT seq, event, case_id, details FROM events WHERE event IN (?, ?) ORDER BY seq",
        (Event.CASE_FLAGGED, Event.CASE_FLAG_RESOLVED),
    )
    for seq, event, case_id, text in rows:
        kind = str((json.loads(text) if text else {}).get("kind"))
        latest[(str(case_id), kind)] = (int(seq), str(event))
    table = {
        (str(c), str(k)): resolved
        for c, k, resolved in rows_if_any(conn, "SELECT case_id, kind, resolved_at FROM case_flags")
    }
    closed = Event.CASE_FLAG_RESOLVED
    for key in sorted(latest.keys() | table.keys()):
        seq, event = latest.get(key, (0, ""))
        if key not in table:
            how = "is gone"
        elif table[key] is not None and event != closed:
            how = f"is resolved without a {closed} event"
        elif table[key] is None and event == closed:
            how = "is open, the chain resolved it"
        else:
            continue
        result.add(seq, "case_flags", f"case_flags: flag {key[1]} of case {key[0]} {how}")
