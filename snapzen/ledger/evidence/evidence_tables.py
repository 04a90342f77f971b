"""The working tables verify and restore rely on, checked against the chain.

``ledger_meta`` (the key binding), ``erased_subjects`` (who must never be sent again) and
``case_flags`` (cases waiting for a person) are plain tables; what they must hold is also in
the chain (``ledger_bound``, erasure ``request`` events, ``case_flagged``), so a row deleted
or edited is named here, with its table. Holds and requests have no table of their own:
they are read from the chain itself, which ``verify`` recomputes.

Rows the chain cannot vouch for (written before these events were chained) are not judged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from snapzen.ledger.rights.period_keys import FORGOTTEN_REQUESTS_SQL, Resolver
from snapzen.ledger.rights.requests import EVENT as REQUEST_EVENT
from snapzen.ledger.rights.requests import is_erasure_record
from snapzen.ledger.store.case_flags import FLAG_EVENT
from snapzen.ledger.store.identity import BOUND, chained_binding, read_table

# (seq, kind, message), as agreement.Disagreement takes them
Report = Callable[[int, str, str], None]


def check(conn: sqlite3.Connection, report: Report) -> None:
    _ledger_meta(conn, report)
    _erased_subjects(conn, report)
    _case_flags(conn, report)


def _ledger_meta(conn: sqlite3.Connection, report: Report) -> None:
    chained = chained_binding(conn)
    if chained is None:
        return
    seq, bound = chained
    table = read_table(conn)
    for name in BOUND:
        if table.get(name) is None:
            report(
                seq, "ledger_meta", f"ledger_meta: the {name} row is gone (chained at seq {seq})"
            )
        elif table[name] != bound.get(name):
            report(
                seq, "ledger_meta", f"ledger_meta: {name} differs from the one chained at seq {seq}"
            )


def _erased_subjects(conn: sqlite3.Connection, report: Report) -> None:
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
    if not latest:
        return
    try:
        table = dict(conn.execute("SELECT subject_ref, erased_at FROM erased_subjects"))
    except sqlite3.OperationalError:
        table = {}
    for ref, (seq, request_id, at) in sorted(latest.items(), key=lambda item: item[1][0]):
        erased_at = table.get(ref)
        if erased_at is None:
            report(
                seq,
                "erased_subjects",
                f"erased_subjects: the person of request {request_id} is gone (their chats "
                "would be sent again)",
            )
        elif str(erased_at) < at:
            report(
                seq,
                "erased_subjects",
                f"erased_subjects: the person of request {request_id} has an erasure time "
                "before the request's",
            )


def _case_flags(conn: sqlite3.Connection, report: Report) -> None:
    """Every flag the chain opened must still be in case_flags."""
    latest: dict[tuple[str, str], int] = {}
    rows = conn.execute(
        "SELECT seq, case_id, details FROM events WHERE event = ? ORDER BY seq",
        (FLAG_EVENT,),
    )
    for seq, case_id, text in rows:
        kind = str((json.loads(text) if text else {}).get("kind"))
        latest[(str(case_id), kind)] = int(seq)
    if not latest:
        return
    try:
        table = {(str(c), str(k)) for c, k in conn.execute("SELECT case_id, kind FROM case_flags")}
    except sqlite3.OperationalError:
        table = set()
    for (case_id, kind), seq in sorted(latest.items(), key=lambda item: item[1]):
        if (case_id, kind) not in table:
            report(seq, "case_flags", f"case_flags: flag {kind} of case {case_id} is gone")
