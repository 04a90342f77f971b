"""Ledger benchmark: insert rate, verify time, query latency, constant-memory export.

    .venv/bin/python bench/ledger_bench.py [--rows 1000000] [--batch 1000] [--keep DIR]

Builds a ledger through the real ``append_events`` path (one transaction per batch, as the
sync records a Zendesk job's tickets), then measures:

- verify: ``verify_chain`` over every row, and the same time as a ratio of a plain SHA-256
  pass over exactly the bytes verify hashes (prev_hash, seq and the row's stored record, as
  chain.V3_HASHED_SQL builds them, streamed to a scratch file first and read back from the
  page cache);
- query latency (median of repeated runs) for listing by subject, by day and month ranges,
  by ticket, and the Art. 30 report;
- export: RSS before and after streaming every row to CSV and JSONL, to show it is flat.

Writes its figures to bench/RESULTS.md under ``## Ledger`` (other sections are left alone).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapzen.ledger.evidence import agreement, audit, verify
from snapzen.ledger.evidence.chain import V3_HASHED_SQL, append_events
from snapzen.ledger.evidence.verify import walk_chain
from snapzen.ledger.store.db import open_db, transaction

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
KEY = b"bench-ledger-key-0123456789"
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
SUBJECTS = 200_000  # about 5 transfers per person at 1M rows


def fields_for(i: int, n: int) -> dict[str, Any]:
    moment = START + SPAN * (i / n)
    return {
        "event": "transfer",
        "case_id": f"case-{i}",
        "widget_id": f"w{i % 4}",
        "subject_ref": hashlib.sha256(f"subject-{i % SUBJECTS}".encode()).hexdigest(),
        "origin_country": ("DE", "FR", "IE", "NL", "ES")[i % 5],
        "recipient": "Zendesk, Inc.",
        "destination_country": "US",
        "legal_basis": "art46" if i % 10 else "art49_1a",
        "mechanism_ref": "SCC 2021/914 module 2",
        "consent_variable": "gdpr_consent",
        "consent_value": "yes",
        "consent_source": "javascript_variables",
        "data_categories": ["contact_data", "chat_content", "location"],
        "redactions": {"card": i % 2},
        "ticket_id": 100_000 + i,
        "recorded_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retention_until": (moment + timedelta(days=730)).date().isoformat(),
        "run_id": f"run-{i // 1000}",
        "actor": "cron",
    }


# Each transfer's case, as the sync leaves it (synced, with its ticket): what `ledger verify`
# compares with the chain. Written beside the rows, in the same transaction, as the sync does.
_CASE_SQL = """INSERT INTO cases (case_id, widget_id, status, ticket_id, subject_ref,
                                  first_seen_at, updated_at, synced_at)
               VALUES (?, ?, 'synced', ?, ?, ?, ?, ?)"""


def build(path: Path, rows: int, batch: int) -> float:
    """Seconds spent appending the ledger rows (the cases rows are not timed)."""
    db = open_db(path, create=True)
    elapsed = 0.0
    for first in range(1, rows + 1, batch):
        with transaction(db) as conn:
            last = min(first + batch, rows + 1)
            fields = [fields_for(i, rows) for i in range(first, last)]
            started = time.perf_counter()
            append_events(conn, fields)
            elapsed += time.perf_counter() - started
            conn.executemany(_CASE_SQL, [_case_values(f) for f in fields])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")  # what `PRAGMA optimize` would give a long-lived ledger
    db.conn.close()
    return elapsed


def _case_values(fields: dict[str, Any]) -> tuple[Any, ...]:
    stamp = fields["recorded_at"]
    return (fields["case_id"], fields["widget_id"], fields["ticket_id"], fields["subject_ref"],
            stamp, stamp, stamp)  # fmt: skip


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def median_ms(func: Callable[[], Any], repeat: int = 7) -> float:
    func()  # warm the page cache once
    return statistics.median(timed(func)[0] for _ in range(repeat)) * 1000


def sha256_baseline(conn: sqlite3.Connection, scratch: Path) -> tuple[float, int]:
    """Plain SHA-256 over exactly the bytes verify hashes, read back from a scratch file."""
    with scratch.open("wb") as out:
        for (hashed,) in conn.execute(f"SELECT {V3_HASHED_SQL} FROM events ORDER BY seq"):
            out.write(hashed)
    size = scratch.stat().st_size

    def hash_file() -> None:
        digest = hashlib.sha256()
        with scratch.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)

    hash_file()  # warms the page cache, so the timed passes measure hashing, not the disk
    seconds = min(timed(hash_file)[0] for _ in range(3))
    scratch.unlink()
    return seconds, size


class _Sink(io.TextIOBase):
    """A writable text stream that drops everything: measures export, not the disk."""

    def write(self, text: str) -> int:
        return len(text)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def export_memory(conn: sqlite3.Connection, fmt: audit.Format, target: Path) -> dict[str, float]:
    before = rss_mb()
    with target.open("w", encoding="utf-8", newline="") as handle:
        seconds, count = timed(
            lambda: audit.write_rows(audit.iter_transfers(conn), handle, fmt, audit.COLUMNS)
        )
    after = rss_mb()
    size = target.stat().st_size / 2**20
    target.unlink()
    return {"rows": count, "seconds": seconds, "rss_before": before, "rss_after": after,
            "file_mb": size}  # fmt: skip


def query_plan(conn: sqlite3.Connection, sql: str, params: list[Any]) -> str:
    return "; ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def run(rows: int, batch: int, workdir: Path) -> list[str]:
    path = workdir / "bench.db"
    path.unlink(missing_ok=True)
    print(f"building {rows:,} rows in {path} (batch {batch}) ...", flush=True)
    insert_s = build(path, rows, batch)
    db_mb = path.stat().st_size / 2**20
    print(f"insert: {rows / insert_s:,.0f} rows/s ({insert_s:.1f} s), file {db_mb:.0f} MB")

    conn = open_db(path, read_only=True).conn
    verify.verify_chain(conn)  # warm the page cache: both timings below read from memory
    verify_s, result = timed(lambda: verify.verify_chain(conn))
    assert result.ok and result.rows == rows, result.first_problem
    walk_s, walked = timed(lambda: walk_chain(conn))
    assert walked.ok and walked.rows == rows, walked.first_problem
    tables_s, tables = timed(lambda: agreement.check_tables(conn))
    assert not tables.problems and tables.cases_checked == rows, tables.problems[:3]
    command_s, _ = timed(lambda: (verify.verify_ledger(conn), agreement.check_tables(conn)))
    sha_s, hashed_bytes = sha256_baseline(conn, workdir / "canonical.bin")
    file_sha_s = timed(lambda: hashlib.file_digest(path.open("rb"), "sha256"))[0]
    ratio = verify_s / sha_s
    print(
        f"verify: {verify_s:.2f} s ({rows / verify_s:,.0f} rows/s; one process: {walk_s:.2f} s, "
        f"{walk_s / sha_s:.1f}×); SHA-256 of the same {hashed_bytes / 2**20:.0f} MB: "
        f"{sha_s:.3f} s → ratio {ratio:.1f}×"
    )
    print(
        f"cases and runs against the chain ({rows:,} cases): {tables_s:.2f} s; "
        f"`ledger verify`'s checks together: {command_s:.2f} s"
    )

    subject = hashlib.sha256(f"subject-{rows // 3 % SUBJECTS}".encode()).hexdigest()
    day = (START + SPAN / 2).date()
    month_start = day.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)

    def listing(filters: audit.Filters, limit: int | None = None) -> Callable[[], int]:
        return lambda: sum(1 for _ in audit.iter_transfers(conn, filters, limit=limit))

    queries = {
        "subject (Art. 15 lookup)": audit.Filters(subject_ref=subject),
        "one day": audit.Filters.from_cli(since=str(day), until=str(day)),
        "one month": audit.Filters.from_cli(since=str(month_start), until=str(month_end)),
        "one year": audit.Filters.from_cli(since="2024-01-01", until="2024-12-31"),
        "ticket id": audit.Filters(ticket=100_000 + rows // 2),
    }
    latency = []
    for name, filters in queries.items():
        count = listing(filters)()
        all_ms = median_ms(listing(filters))
        first_ms = median_ms(listing(filters, limit=100))
        where, params = filters.where()
        plan = query_plan(conn, f"SELECT * FROM events{where} ORDER BY seq", params)
        latency.append((name, count, all_ms, first_ms, plan))
        print(f"{name}: {count} rows, all {all_ms:.1f} ms, first 100 {first_ms:.1f} ms [{plan}]")
    report_ms = median_ms(lambda: audit.build_report(conn), repeat=3)
    print(f"report (whole ledger): {report_ms:.0f} ms")

    exports = {fmt: export_memory(conn, fmt, workdir / f"export.{fmt}") for fmt in ("csv", "jsonl")}
    for fmt, figures in exports.items():
        print(f"export {fmt}: {figures['rows']:,} rows in {figures['seconds']:.1f} s, "
              f"{figures['file_mb']:.0f} MB; RSS {figures['rss_before']:.0f} → "
              f"{figures['rss_after']:.0f} MB")  # fmt: skip
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.close()

    lines = [
        "## Ledger",
        "",
        f"`bench/ledger_bench.py --rows {rows} --batch {batch}` on "
        f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs ({platform.machine()}).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| rows | {rows:,}, each with its synced case ({db_mb:.0f} MB database file) |",
        f"| insert via `append_events`, {batch} rows per transaction | "
        f"{rows / insert_s:,.0f} rows/s ({insert_s:.1f} s) |",
        f"| verify (`verify_chain`, whole chain, seq ranges in parallel) | {verify_s:.2f} s "
        f"({rows / verify_s:,.0f} rows/s) |",
        f"| verify in one process (`walk_chain`) | {walk_s:.2f} s |",
        f"| plain SHA-256 over the same {hashed_bytes / 2**20:.0f} MB verify hashes | "
        f"{sha_s:.3f} s → verify is **{verify_s / sha_s:.1f}×** that "
        f"({walk_s / sha_s:.1f}× in one process) |",
        f"| cases and runs against the chain (`agreement.check_tables`, {rows:,} synced cases) "
        f"| {tables_s:.2f} s |",
        f"| `ledger verify`'s checks together (chain, then the tables) | {command_s:.2f} s |",
        f"| SHA-256 of the database file ({db_mb:.0f} MB), for scale | {file_sha_s:.3f} s |",
        f"| Art. 30 report over the whole ledger | {report_ms:.0f} ms |",
        "",
        "Query latency (median of 7, warm cache; chain order `ORDER BY seq`):",
        "",
        "| listing | rows | all rows | first 100 | plan |",
        "|---|---|---|---|---|",
    ]
    for name, count, all_ms, first_ms, plan in latency:
        lines.append(f"| {name} | {count:,} | {all_ms:.1f} ms | {first_ms:.1f} ms | {plan} |")
    lines += [
        "",
        "Export memory (every row streamed from the cursor to a file; RSS via psutil):",
        "",
        "| format | rows | time | file | RSS before → after |",
        "|---|---|---|---|---|",
    ]
    for fmt, f in exports.items():
        lines.append(
            f"| {fmt} | {f['rows']:,} | {f['seconds']:.1f} s | {f['file_mb']:.0f} MB | "
            f"{f['rss_before']:.0f} → {f['rss_after']:.0f} MB |"
        )
    lines += [
        "",
        f"Peak RSS of the whole benchmark process: {maxrss:.0f} MB.",
        "",
        "Chain version 3: each row stores the record its hash covers (the columns are generated "
        "from it), so verify reads and hashes stored bytes and rebuilds nothing; seq ranges "
        "are checked by one process per CPU (up to 4). It streams, so memory stays flat at "
        "any size. Earlier formats' figures are in the subsections below.",
        "",
    ]
    return lines


def update_results(section: list[str]) -> None:
    """Replace (or add) the `## Ledger` section's head, up to its first `###` subsection
    (the history of earlier runs); leave every other section as it is."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n\n"
    block = "\n".join(section).rstrip("\n") + "\n"
    pattern = re.compile(r"^## Ledger\n.*?(?=^## |^### |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="build the ledger here and keep it")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        section = run(args.rows, args.batch, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
            section = run(args.rows, args.batch, Path(tmp))
    if not args.no_write:
        update_results(section)
        print(f"wrote the Ledger section of {RESULTS}")


if __name__ == "__main__":
    main()
