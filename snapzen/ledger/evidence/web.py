"""Read-only auditor web UI: Datasette over a sanitized snapshot of the ledger.

Why a snapshot rather than the live file: ``cases.raw`` holds SnapEngage payloads (names,
emails, transcripts) until a case is terminal. Datasette can hide a table from its index but
not a column from arbitrary SQL, so the only reliable way to keep ``raw`` out of reach is to
serve a copy without it. The copy is taken with SQLite's online backup API (consistent even
while a sync writes), the column is dropped and the file VACUUMed so the bytes are gone, and
Datasette serves it with ``-i`` (immutable: no writes possible, not even through SQL). The
snapshot's SHA-256 is printed so an auditor can tie what they saw to a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snapzen.ledger.evidence.audit import (
    BY_BASIS_SQL,
    BY_MONTH_SQL,
    NOT_DELETED_SQL,
    SUBJECT_COLUMNS,
)
from snapzen.ledger.evidence.events import describe_all
from snapzen.ledger.rights.period_keys import KEYED_SQL
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.support.atomic import create_private, private_dir, write_private
from snapzen.support.sqlite_uri import read_only_uri

DB_NAME = "ledger"  # Datasette names the database after the file stem: /ledger
# Personal data, and key material, that never leave the live file.
HIDDEN_COLUMNS = {"cases": ("raw",), "period_keys": ("key",)}

TABLE_DESCRIPTIONS = {
    "events": (
        "The ledger: append-only, hash-chained rows (never edited), one per event (the event "
        "column), each with its time (recorded_at): restricted transfers of chats to Zendesk "
        "(event transfer), every other decision about a chat (sent, withheld, ignored, "
        "failed, dismissed, adopted), ticket erasures and expiries, finished runs, "
        "data-subject requests, access packs and legal holds. 'Ledger rows' counts all of "
        "them, 'decisions' the rows about chats, 'transfers' the restricted transfers."
    ),
    "transfers": (
        "The restricted transfers (Art. 30(1)(e)): a view of the events whose event is "
        "transfer, one row per chat sent to Zendesk outside the EEA/UK, with its legal basis "
        "and its time (transferred_at). seq and hash are the event's in the chain."
    ),
    "cases": "Staging outbox: one row per SnapEngage case and its sync status (raw payload "
    "removed from this copy).",
    "runs": "One row per snapzen run (kind: sync, backfill, retry, retention, erase, ...) and "
    "how it ended.",
    "state": "Per-widget cursor: every case on days before cursor_day is in a terminal state.",
    "backfill_windows": "Finished `snapzen backfill` windows (widget, UTC day) a rerun skips.",
    "erased_subjects": "People erased under Art. 17 (HMAC only): their chats that started "
    "before the erasure are never sent, even after a restore.",
    "ledger_meta": "The ledger's identity: id, creation time, fingerprint of its key (an HMAC "
    "derived from the key, never the key).",
    "case_flags": "Cases a person must decide (e.g. several Zendesk tickets with one "
    "external_id); nothing is deleted automatically.",
    "period_keys": "The months (of chat start) whose subject-reference key still exists (the "
    "key itself is not in this copy); a month's row goes when the retention sweep forgets it.",
    "subject_periods": "Which chained reference of a chat is which person's lookup reference, "
    "per month; a forgotten month's rows are deleted, so its chain rows link to nobody.",
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "events": {
        "seq": "Position in the hash chain (1, 2, 3, … without gaps).",
        "event": "What the row records: " + describe_all() + ".",
        "case_id": "SnapEngage case id of the chat.",
        "widget_id": "SnapEngage widget the chat came through.",
        "subject_ref": "Pseudonymous data-subject key: HMAC-SHA256 of the lower-cased email "
        "under the ledger key (never the email). Use the by_subject query.",
        "origin_country": "Visitor country (ISO 3166 alpha-2) reported by SnapEngage.",
        "recipient": "Who received the data (the importer, e.g. Zendesk, Inc.).",
        "destination_country": "Third country the data went to (Zendesk hosting region).",
        "legal_basis": "Chapter V basis: art45 adequacy, art46 safeguards, art49_1a explicit "
        "consent, art49_1b contract necessity.",
        "mechanism_ref": "The adequacy decision or safeguard relied on (e.g. SCC module).",
        "consent_variable": "Chat variable that carried the consent answer (Art. 49(1)(a)).",
        "consent_value": "The consent answer as recorded.",
        "consent_source": "Where the consent was found (javascript/operator variables, labels).",
        "consent_observed_at": "When consent was given, if a source said so (the chat's start "
        "is details.chat_started_at, not this). Rows before the decision log held the chat start.",
        "data_categories": "JSON list of personal-data categories transferred.",
        "redactions": "JSON {category: count} of values redacted before sending (no values).",
        "ticket_id": "Zendesk ticket id that holds the transcript.",
        "recorded_at": "Time of the event (UTC, ISO 8601): the transfer, the erasure, the "
        "run's end, ... (its record keeps the key transferred_at, the column's name before "
        "schema 9).",
        "retention_until": "Date the ticket is due for deletion (storage period, Art. 15(1)(d)).",
        "run_id": "snapzen run that wrote the row (see runs).",
        "actor": "Who ran it: cron or a named engineer.",
        "details": "JSON details of the event, e.g. an erasure's reason and transfer_seq.",
        "prev_hash": "Hash of the previous row (64 zeros for the first).",
        "hash": "SHA-256 over prev_hash, seq and this row's record (tamper evidence).",
        "chain_version": "How the hash is computed: 3 = over prev_hash, seq and record; "
        "empty (1) and 2 = over prev_hash and record (docs/auditing.md).",
        "record": "The JSON the hash covers; every other column is read from it.",
    },
    "cases": {
        "case_id": "SnapEngage case id.",
        "widget_id": "SnapEngage widget.",
        "day": "UTC day the chat started (YYYY-MM-DD).",
        "case_type": "SnapEngage case type (chat, offline).",
        "started_at": "Chat start (UTC).",
        "ended_at": "Chat end (UTC).",
        "status": "pending, pushing, synced, withheld, failed or ignored.",
        "outcome": "Consent decision: eligible, withheld or not_restricted.",
        "legal_basis": "Chapter V basis chosen for the transfer (if eligible).",
        "reason": "Why the chat was withheld or ignored.",
        "error": "Last failure, one line.",
        "attempts": "Push attempts so far.",
        "ticket_id": "Zendesk ticket id once synced.",
        "batch_id": "Push batch (write-ahead intent).",
        "job_id": "Zendesk import job id.",
        "pushed_at": "When the batch was pushed (UTC).",
        "synced_at": "When the ticket was confirmed (UTC).",
        "raw_purged_at": "When the raw SnapEngage payload was deleted (UTC).",
        "first_seen_at": "When snapzen first staged the case (UTC).",
        "updated_at": "Last status change (UTC).",
        "run_id": "Run that last changed the case.",
        "transfer_draft": "JSON ledger fields prepared before the push (pseudonymous).",
        "expired_at": "When the retention sweep saw Zendesk confirm the ticket's deletion "
        "(UTC); matches an `expired` ledger event.",
        "name_ref": "HMAC of the visitor's name (never the name): tells people who typed "
        "the same email apart (subject access and erasure refuse such a reference).",
    },
    "runs": {
        "run_id": "Run id.",
        "kind": "sync, backfill, retry, retention or erase.",
        "actor": "cron or a named engineer.",
        "started_at": "Start (UTC).",
        "finished_at": "End (UTC).",
        "outcome": "running, ok, partial (some cases failed or at risk), interrupted "
        "(stopped by SIGTERM or Ctrl-C before it finished) or aborted (an error).",
        "exit_code": "The exit code the command ended with (0 ok, 1 interrupted or aborted, "
        "2 configuration error, 3 partial).",
        "fetched": "Cases fetched.",
        "created": "Tickets created.",
        "withheld": "Chats withheld.",
        "failed": "Cases failed.",
        "details": "JSON counts and notes.",
        "error": "Why the run aborted or was interrupted, one line.",
    },
    "state": {
        "widget_id": "SnapEngage widget.",
        "cursor_day": "Every case on days before this one is in a terminal state.",
        "updated_at": "Last cursor move (UTC).",
    },
    "backfill_windows": {
        "widget_id": "SnapEngage widget.",
        "day": "UTC day fetched (YYYY-MM-DD).",
        "run_id": "Backfill run that finished the window.",
        "actor": "Who ran the backfill.",
        "fetched": "Cases fetched for that day.",
        "finished_at": "When the window finished (UTC).",
    },
    "erased_subjects": {
        "subject_ref": "HMAC of the erased person's email (never the email).",
        "erased_at": "Time of the (latest) erasure; chats started up to here are withheld.",
        "request_id": "The request in the journal (`request` events) that erased them.",
    },
    "ledger_meta": {
        "name": "ledger_id, created_at, key_fingerprint or bound_by.",
        "value": "Its value (the key fingerprint is an HMAC derived from the key).",
    },
    "case_flags": {
        "case_id": "SnapEngage case id.",
        "kind": "duplicate_tickets, ticket_mismatch or ticket_for_withheld.",
        "ticket_ids": "JSON list of the Zendesk tickets found.",
        "source": "What found it: init --adopt, restore or recovery.",
        "details": "JSON, more about the finding.",
        "flagged_at": "When it was flagged (UTC).",
        "resolved_at": "When a person resolved it (empty: open).",
    },
    "period_keys": {
        "period": "YYYY-MM: the UTC month of chat start the key covers.",
        "created_at": "When the month's first chat was recorded (UTC).",
    },
    "subject_periods": {
        "chain_ref": "subject_ref as chained on the month's chat rows (HMAC under its key).",
        "lookup_ref": "The person's reference (cases.subject_ref: HMAC of the email).",
        "period": "YYYY-MM: the month it belongs to.",
    },
}

# The transfers view: the events' own columns, the time under the name true of transfers.
COLUMN_DESCRIPTIONS["transfers"] = {
    **{
        name: text
        for name, text in COLUMN_DESCRIPTIONS["events"].items()
        if name not in ("event", "recorded_at", "prev_hash", "chain_version", "record")
    },
    "transferred_at": "Time of the transfer (UTC, ISO 8601).",
}

_ON_TRANSFERS = {"time": "transferred_at", "table": "transfers", "where": ""}
CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "by_subject": {
        "title": "Every ledger row of one data subject (Art. 15)",
        "description": "Paste the subject_ref (`snapzen ledger subject --email … --format json` "
        "prints it): the person's transfers (recipients, third country, basis/safeguard and "
        "storage period) and every other event about their chats (withheld, erased, "
        "expired, ...).",
        "sql": f"SELECT {', '.join(SUBJECT_COLUMNS)} FROM events WHERE subject_ref IN "
        "(SELECT chain_ref FROM subject_periods WHERE lookup_ref = :subject_ref) OR "
        f"(subject_ref = :subject_ref AND event NOT IN {KEYED_SQL}) ORDER BY seq",
    },
    "by_month": {
        "title": "Restricted transfers by month and legal basis",
        "sql": BY_MONTH_SQL.format(n="transfers", **_ON_TRANSFERS),
    },
    "by_basis": {
        "title": "Restricted transfers by legal basis and mechanism (Art. 30(1)(e))",
        "description": "Art. 49 derogations in many months are regular transfers, which EDPB "
        "Guidelines 2/2018 do not see as covered by a derogation.",
        "sql": BY_BASIS_SQL.format(**_ON_TRANSFERS),
    },
    "expiring_soon": {
        "title": "Transfers whose retention ends soon",
        "description": "Restricted transfers whose ticket is due for deletion within the "
        "number of days given below (days) and was not yet erased or expired.",
        "sql": "SELECT t.seq, t.ticket_id, t.case_id, t.retention_until, t.recipient, "
        "t.legal_basis FROM transfers t WHERE t.retention_until >= date('now') "
        "AND t.retention_until <= date('now', '+' || CAST(:days AS INTEGER) || ' days') "
        f"AND {NOT_DELETED_SQL} ORDER BY t.retention_until, t.seq",
    },
    "withheld": {
        "title": "Withheld chats by reason and month",
        "description": "Chats not sent, counted by the reason recorded (no consent value, "
        "consent refused, a person erased under Art. 17, ...), month and widget.",
        "sql": "SELECT coalesce(reason, '(none)') AS reason, substr(day, 1, 7) AS month, "
        f"widget_id, count(*) AS cases FROM cases WHERE status = '{CaseStatus.WITHHELD}' "
        "GROUP BY 1, 2, 3 ORDER BY month, cases DESC",
    },
}


def make_snapshot(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest`` without the hidden columns; return the file's SHA-256."""
    create_private(dest)  # 0600 before the copy: it holds ledger rows
    src = sqlite3.connect(read_only_uri(source), uri=True)
    out = sqlite3.connect(str(dest))
    try:
        src.backup(out)
        out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        for table, columns in HIDDEN_COLUMNS.items():
            present = {row[1] for row in out.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column in present:
                    out.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        out.commit()
        out.execute("VACUUM")  # rewrite the file so no dropped bytes survive in free pages
    finally:
        out.close()
        src.close()
    return file_sha256(dest)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _schema_comments(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """`-- comment` after a column in CREATE TABLE: the fallback for columns added later."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    comments: dict[str, str] = {}
    for line in (row[0] if row else "").splitlines():
        match = re.match(r"\s*(\w+)\s+[A-Z].*?--\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def column_descriptions(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """A description for every column present: ours first, then the schema's comment."""
    written = COLUMN_DESCRIPTIONS.get(table, {})
    comments = _schema_comments(conn, table)
    described = {}
    for row in conn.execute(f"PRAGMA table_xinfo({table})"):  # generated columns too
        name = str(row[1])
        described[name] = written.get(name) or comments.get(name) or "(undocumented column)"
    return described


def build_metadata(snapshot: Path, *, sha256: str | None = None) -> dict[str, Any]:
    conn = sqlite3.connect(read_only_uri(snapshot), uri=True)
    try:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        ]
        tables: dict[str, dict[str, Any]] = {
            table: {
                "description": TABLE_DESCRIPTIONS.get(table, "(undocumented table)"),
                "columns": column_descriptions(conn, table),
            }
            for table in names
        }
    finally:
        conn.close()
    for chained in ("events", "transfers"):
        if chained in tables:
            tables[chained]["sort_desc"] = "seq"
    snapshot_note = f" Snapshot SHA-256: {sha256}." if sha256 else ""
    return {
        "title": "snapzen ledger",
        "description": (
            "Read-only record of what snapzen did with visitors' chats: every restricted "
            "transfer to Zendesk and every other decision and event, with the runs that made "
            "them (GDPR Art. 30 / Art. 15 evidence). No raw personal data: subjects appear only as "
            "HMAC references. Served immutable; verify integrity with `snapzen ledger verify "
            "--checkpoint FILE`." + snapshot_note
        ),
        "databases": {
            DB_NAME: {
                "description": "Sanitized snapshot of the snapzen ledger.",
                "tables": tables,
                "queries": CANNED_QUERIES,
            }
        },
    }


def serve_command(
    snapshot: Path,
    metadata: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    sql_time_limit_ms: int = 5000,
    extra: Sequence[str] = (),
) -> list[str]:
    """`datasette serve -i` (immutable) — run with this interpreter so the venv's is used."""
    return [
        sys.executable, "-m", "datasette", "serve",
        "-i", str(snapshot),
        "--metadata", str(metadata),
        "--host", host,
        "--port", str(port),
        # Report queries scan the whole table; 1 s (the default) is too short at 1M rows.
        "--setting", "sql_time_limit_ms", str(sql_time_limit_ms),
        *extra,
    ]  # fmt: skip


def prepare(source: Path, workdir: Path) -> tuple[Path, Path, str]:
    """Snapshot + metadata file in ``workdir``; returns (snapshot, metadata, sha256)."""
    private_dir(workdir)
    snapshot = workdir / f"{DB_NAME}.db"
    sha = make_snapshot(source, snapshot)
    metadata = workdir / "metadata.json"
    write_private(metadata, json.dumps(build_metadata(snapshot, sha256=sha), indent=2) + "\n")
    return snapshot, metadata, sha


def run(command: list[str]) -> int:
    """Run Datasette in the foreground until it exits (Ctrl-C stops it)."""
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
