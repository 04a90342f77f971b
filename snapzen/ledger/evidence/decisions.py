"""The decision log: every decision about a case is a chained ledger row.

A transfer row alone proves what was sent; it cannot show that the refused chats were not,
because a withheld case is only a status in the working ``cases`` table, which anyone with
the file can flip. So each decision is appended to the chain, in the same transaction as
the status it explains: ``transfer`` (a restricted transfer, with its basis), ``sent`` (sent,
not a restricted transfer), ``withheld`` (with its reason), ``ignored``, ``failed`` (for good:
attempts exhausted), ``dismissed``, ``erased``, ``expired``, ``adopted``; and ``run`` for each
finished run, with a digest of its ``runs`` row. ``snapzen.ledger.evidence.agreement`` then checks
that the working tables still say what the chain says.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.case_status import CaseStatus

# The decisions that set a case's status, and the status each leaves it in.
STATUS_AFTER: dict[str, CaseStatus] = {
    Event.TRANSFER: CaseStatus.SYNCED,
    Event.SENT: CaseStatus.SYNCED,
    Event.ADOPTED: CaseStatus.SYNCED,
    Event.WITHHELD: CaseStatus.WITHHELD,
    Event.IGNORED: CaseStatus.IGNORED,
    Event.DISMISSED: CaseStatus.IGNORED,
    Event.FAILED: CaseStatus.FAILED,
}
CASE_EVENTS = tuple(STATUS_AFTER)
RUN_EVENT = Event.RUN


def decision(
    event: str,
    case_id: str,
    stamp: str,
    *,
    details: Mapping[str, Any] | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One decision row's fields. ``stamp`` goes in ``recorded_at``, the event's time
    (the column's name predates the decision log; NOT NULL)."""
    if event not in STATUS_AFTER and event not in (Event.ERASED, Event.EXPIRED):
        raise ValueError(f"not a decision: {event}")
    return {
        "event": event,
        "case_id": case_id,
        "recorded_at": stamp,
        "details": dict(details) if details else None,
        **columns,
    }


def record(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Append decisions inside the caller's transaction (the one changing the status)."""
    return append_events(conn, rows)


def terminal_decisions(
    items: Iterable[tuple[str, str, str | None, str | None, str | None, Mapping[str, Any]]],
    stamp: str,
    *,
    run_id: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Rows for cases made terminal without a push: (case_id, status, outcome, reason,
    subject_ref, facts); ``facts`` may carry widget_id, origin_country and consent fields.
    Every row carries the ``run_id`` and ``actor`` of the run that decided."""
    rows = []
    for case_id, status, outcome, reason, subject, facts in items:
        columns = {k: v for k, v in facts.items() if k != "details"}
        columns.setdefault("run_id", run_id)
        columns.setdefault("actor", actor)
        details = {"reason": reason, "outcome": outcome, **dict(facts.get("details") or {})}
        rows.append(
            decision(status, case_id, stamp, subject_ref=subject, details=details, **columns)
        )
    return rows


RUN_COLUMNS = (
    "run_id", "kind", "actor", "started_at", "finished_at", "outcome", "exit_code", "fetched",
    "created", "withheld", "failed", "details", "error",
)  # fmt: skip


def run_digest(values: Mapping[str, Any]) -> str:
    """SHA-256 of a ``runs`` row (every column), as canonical JSON."""
    body = {column: values.get(column) for column in RUN_COLUMNS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_run(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else dict(zip(RUN_COLUMNS, row, strict=True))


def record_run(conn: sqlite3.Connection, run_id: str, stamp: str) -> None:
    """Chain the finished ``runs`` row (its digest), in the transaction that finished it."""
    values = read_run(conn, run_id)
    if values is None:
        return
    append_events(
        conn,
        [
            {
                "event": RUN_EVENT,
                "case_id": f"run:{run_id}",  # NOT NULL column; a run is about no one case
                "run_id": run_id,
                "actor": values["actor"],
                "recorded_at": stamp,
                "details": {
                    "kind": values["kind"],
                    "outcome": values["outcome"],
                    "digest": run_digest(values),
                },
            }
        ],
    )
