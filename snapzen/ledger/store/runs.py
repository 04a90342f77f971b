"""The ``runs`` table and the one run-id scheme every command uses.

A run id is ``<kind>-<12 hex>`` (``sync-3f9c0a1b2c4d``, ``erase-…``, ``restore-…``): the kind
makes a run id found in a log line or a ledger event readable on its own, and 48 random bits
keep ids unique without coordination between processes. ``new_run_id`` is the only place
that makes one.

A run is ``start_run`` then ``finish_run``, each its own transaction, so a crash leaves a row
saying 'running'; the finished row is chained in the transaction
that finished it, as a digest of its ``runs`` row (``run_digest``; ``snapzen ledger verify``
compares it with the row). Commands call these through one lifecycle, commands.run.recorded_run.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.db import transaction
from snapzen.support import clock

_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")

# How a run ended (``runs.outcome``), the one list `status`, the metrics, `status --check` and
# the auditor UI read:
#   running      started, not finished (or the process died without a word: SIGKILL, power)
#   ok           finished, nothing needs a look (exit code 0)
#   partial      finished, some cases failed or are at risk (exit code 3)
#   interrupted  stopped on request (SIGTERM, SIGINT/Ctrl-C) before it finished; cursors and
#                a backfill's days were not advanced, so the next run or the same command
#                redoes the rest (exit code 1)
#   aborted      ended by an error (exit code 1, or 2 for a configuration error)
RUN_OUTCOMES = ("running", "ok", "partial", "interrupted", "aborted")
# Outcomes of a run that did its job; 'partial' problems have their own checks and metrics.
COMPLETED_OUTCOMES = ("ok", "partial")
COUNTS = ("fetched", "created", "withheld", "failed")  # a run's counts, in `runs` columns


def ended_outcome(exit_code: int, *, interrupted: bool = False) -> str:
    """The outcome of a run that returned (did not raise) with ``exit_code``."""
    if interrupted:
        return "interrupted"
    return "ok" if exit_code == 0 else "partial"


def new_run_id(kind: str) -> str:
    """A fresh run id for a run of ``kind`` (the same word as ``runs.kind``)."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"not a run kind: {kind!r}")
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def start_run(
    db: sqlite_utils.Database,
    run_id: str,
    kind: str,
    actor: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    text = json.dumps(dict(details or {}), default=str)
    row = {"run_id": run_id, "kind": kind, "actor": actor, "started_at": clock.format(now)}
    db.table("runs").insert(row | {"outcome": "running", "details": text})  # commits on its own


def finish_run(
    db: sqlite_utils.Database,
    run_id: str,
    now: datetime,
    *,
    outcome: str,
    exit_code: int,
    counts: Mapping[str, int],
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    text = json.dumps(dict(details), default=str) if details is not None else None
    given = {"now": clock.format(now), "outcome": outcome, "exit_code": exit_code}
    given |= {name: counts.get(name, 0) for name in COUNTS}
    with transaction(db) as conn:
        conn.execute(
            """UPDATE runs SET finished_at = :now, outcome = :outcome, exit_code = :exit_code,
                   fetched = :fetched, created = :created, withheld = :withheld,
                   failed = :failed, error = :error, details = COALESCE(:details, details)
               WHERE run_id = :run_id""",
            given | {"error": error, "details": text, "run_id": run_id},
        )
        values = read_run(conn, run_id)
        if values is not None:  # a run is about no one case: its case_id is run:<id>
            digest = run_digest(values)
            details = {"kind": values["kind"], "outcome": values["outcome"], "digest": digest}
            facts = {"run_id": run_id, "actor": values["actor"], "details": details}
            stamp = clock.format(now)
            append_events(
                conn, event=Event.RUN, case_id=f"run:{run_id}", recorded_at=stamp, **facts
            )


# Every column of `runs`, in schema order: what a run's digest covers (never reordered).
_FIRST = ("run_id", "kind", "actor", "started_at", "finished_at", "outcome", "exit_code")
RUN_COLUMNS = (*_FIRST, *COUNTS, "details", "error")


def run_digest(values: dict[str, Any]) -> str:
    """SHA-256 of a ``runs`` row (every column), as canonical JSON."""
    body = {column: values.get(column) for column in RUN_COLUMNS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_run(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else dict(zip(RUN_COLUMNS, row, strict=True))
