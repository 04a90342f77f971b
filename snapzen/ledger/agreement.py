"""Do the working tables still say what the chain says?

The chain is tamper-evident; ``cases`` and ``runs`` are not, and they are what the product
acts on (a case marked synced is never sent; a ticket id is what the retention sweep and
erasure delete). Each decision is chained (``snapzen.ledger.decisions``), so ``verify`` can
compare: a withheld case marked synced, a ``ticket_id`` pointed elsewhere, a deleted case, a
runs row edited or deleted, or a terminal case or finished run that the chain never recorded
(when decided after the decision log began) are each named.

Cases decided before the decision log existed have no decision row; they are counted, not
judged, since the chain cannot say anything about them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from snapzen.ledger.decisions import CASE_EVENTS, RUN_EVENT, STATUS_AFTER, read_run, run_digest
from snapzen.ledger.status import TERMINAL, CaseStatus, sql_list

# Statuses a case may pass through after a decision that did not send it: a retry, a
# re-decision when late consent arrives. Sending it again is then chained anew.
_TRANSIENT = (CaseStatus.PENDING, CaseStatus.PUSHING, CaseStatus.FAILED)
_TERMINAL = sql_list(TERMINAL)
_EVENTS = ", ".join(f"'{event}'" for event in CASE_EVENTS)


@dataclass(frozen=True)
class Disagreement:
    seq: int  # the chain row the table contradicts (0: none)
    kind: str  # status | ticket | case_deleted | unrecorded | run_edited | run_deleted
    message: str

    def line(self) -> str:
        return f"seq {self.seq}: {self.message}" if self.seq else self.message


@dataclass
class Agreement:
    cases_checked: int = 0
    runs_checked: int = 0
    before_log: int = 0  # terminal cases decided before the decision log began
    problems: list[Disagreement] = field(default_factory=list)


def check_tables(conn: sqlite3.Connection) -> Agreement:
    result = Agreement()
    _check_cases(conn, result)
    _check_runs(conn, result)
    start = log_start(conn)
    if start is not None:
        _unrecorded(conn, start, result)
    result.before_log = int(
        conn.execute(
            f"""SELECT count(*) FROM cases c WHERE status IN {_TERMINAL}
                AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.case_id = c.case_id
                                AND t.event IN ({_EVENTS}))"""
        ).fetchone()[0]
    )
    return result


def log_start(conn: sqlite3.Connection) -> str | None:
    """When the decision log began: the first row written in chain version 2 or later."""
    row = conn.execute(
        "SELECT transferred_at FROM transfers WHERE chain_version >= 2 ORDER BY seq LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _check_cases(conn: sqlite3.Connection, result: Agreement) -> None:
    rows = conn.execute(
        f"""SELECT t.seq, t.case_id, t.event, t.ticket_id, c.case_id, c.status, c.ticket_id
            FROM (SELECT case_id, max(seq) AS seq FROM transfers
                  WHERE event IN ({_EVENTS}) GROUP BY case_id) AS latest
            JOIN transfers t ON t.seq = latest.seq
            LEFT JOIN cases c ON c.case_id = t.case_id"""
    )
    for seq, case_id, event, chain_ticket, found, status, ticket in rows:
        result.cases_checked += 1
        expected = STATUS_AFTER[event]
        if found is None:
            result.problems.append(
                Disagreement(seq, "case_deleted", f"case {case_id} ({event}) is gone from cases")
            )
        elif expected == CaseStatus.SYNCED and status == CaseStatus.SYNCED:
            if ticket != chain_ticket:
                result.problems.append(
                    Disagreement(
                        seq,
                        "ticket",
                        f"case {case_id}: ticket_id is {ticket}, the chain recorded "
                        f"{chain_ticket} ({event})",
                    )
                )
        elif status != expected and (expected == CaseStatus.SYNCED or status not in _TRANSIENT):
            result.problems.append(
                Disagreement(
                    seq, "status", f"case {case_id} is {status}, the chain recorded {event}"
                )
            )


def _check_runs(conn: sqlite3.Connection, result: Agreement) -> None:
    rows = conn.execute(
        f"""SELECT t.seq, t.run_id, t.details
            FROM (SELECT run_id, max(seq) AS seq FROM transfers WHERE event = '{RUN_EVENT}'
                  GROUP BY run_id) AS latest
            JOIN transfers t ON t.seq = latest.seq"""
    ).fetchall()
    for seq, run_id, details in rows:
        result.runs_checked += 1
        values = read_run(conn, run_id)
        if values is None:
            result.problems.append(
                Disagreement(seq, "run_deleted", f"run {run_id} is gone from runs")
            )
            continue
        recorded = json.loads(details or "{}").get("digest")
        if run_digest(values) != recorded:
            result.problems.append(
                Disagreement(seq, "run_edited", f"run {run_id}: its runs row was edited")
            )


def _unrecorded(conn: sqlite3.Connection, start: str, result: Agreement) -> None:
    """Terminal cases and finished runs since the log began that the chain never saw."""
    cases = conn.execute(
        f"""SELECT case_id, status FROM cases c
            WHERE status IN {_TERMINAL}
              AND (CASE status WHEN '{CaseStatus.SYNCED}' THEN synced_at
                   ELSE raw_purged_at END) >= ?
              AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.case_id = c.case_id
                              AND t.event IN ({_EVENTS}))
            ORDER BY case_id LIMIT 100""",
        (start,),
    )
    for case_id, status in cases:
        result.problems.append(
            Disagreement(0, "unrecorded", f"case {case_id} is {status}: no decision in the chain")
        )
    runs = conn.execute(
        f"""SELECT run_id FROM runs r WHERE finished_at >= ? AND NOT EXISTS
                (SELECT 1 FROM transfers t WHERE t.case_id = 'run:' || r.run_id
                 AND t.event = '{RUN_EVENT}')
            ORDER BY run_id LIMIT 100""",
        (start,),
    )
    for (run_id,) in runs:
        result.problems.append(
            Disagreement(0, "unrecorded", f"run {run_id} is not in the chain (inserted?)")
        )
