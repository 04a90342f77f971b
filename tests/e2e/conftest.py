"""Shared helpers for the end-to-end tests: run the real `snapzen` CLI in a subprocess against an
in-process Sandbox, and compute what *should* have happened from the sandbox's ground truth.

The truth is an independent oracle (the sandbox classifies regions and consent itself), so a
disagreement between it and snapzen is a finding, not something to paper over here.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.evidence.chain import GENESIS, row_hash
from snapzen.sandbox import Sandbox, SandboxConfig
from tests.e2e.cli_server import run_cli
from tests.fakes import LEDGER_KEY, create_ledger

SETTLE = timedelta(minutes=30)  # SnapEngageSettings.settle_minutes default
MAX_ATTEMPTS = 5  # PipelineSettings.max_attempts default
CLI_TIMEOUT = 60.0  # a hung CLI fails the test instead of hanging the suite


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is end-to-end, marked or not (so `-m "not e2e"` skips it)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def cli_env(sb: Sandbox, ledger: Path, **extra: str) -> dict[str, str]:
    """The environment of a `snapzen` subprocess aimed at ``sb`` with its own ledger.

    Polling and backoff are shortened so a test waits on the sandbox, not on production pacing;
    recovery_grace is 0 unless a test that injects faults sets it (see test_faults.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(sb.env())
    env.update(
        SNAPZEN_LEDGER__PATH=str(ledger),
        SNAPZEN_LEDGER__KEY=LEDGER_KEY,
        SNAPZEN_SECRETS_DIR=str(ledger.parent / "no-secrets"),
        SNAPZEN_ZENDESK__JOB_POLL_SECONDS="0.05",
        SNAPZEN_ZENDESK__RECOVERY_GRACE_SECONDS="0",
        SNAPZEN_HTTP__BACKOFF_BASE_SECONDS="0.01",
        SNAPZEN_HTTP__MAX_WAIT_SECONDS="0.2",
        SNAPZEN_LOG__LEVEL="warning",
    )
    env.update(extra)
    return env


def init_ledger(env: Mapping[str, str]) -> Path:
    """Create the ledger of ``env`` as `snapzen init` does (in-process, to save a start-up):
    every sync needs one first. Tests of `init` itself run the real command."""
    from snapzen.ledger.rights.journal_file import create_empty

    path = create_ledger(env["SNAPZEN_LEDGER__PATH"], env["SNAPZEN_LEDGER__KEY"], now_utc())
    create_empty(Path(f"{path}.erasures.jsonl"))  # `init` starts the (empty) rights journal
    return path


def snapzen(
    env: Mapping[str, str], *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m snapzen ARGS`` as a user (or cron) would: a process of its own with
    ``env`` as its whole environment, forked from a server that imported snapzen once
    (tests/e2e/cli_server.py says what that changes: nothing the CLI reads at run time)."""
    return run_cli(args, env, timeout)


def status_json(env: Mapping[str, str]) -> dict[str, Any]:
    done = snapzen(env, "status", "--json")
    assert done.returncode in (0, 3), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def eligible(row: Mapping[str, Any]) -> bool:
    """The consent policy with default settings and the sandbox's UK controller, restated
    from the truth's own terms: every chat is restricted; consent counts only from the
    visitor's page (javascript_variables)."""
    if row["type"] != "chat" or row["in_progress"]:
        return False
    return bool(row["consent"] == "accepted" and row["consent_source"] == "javascript_variables")


@dataclass(frozen=True)
class Expected:
    """What a complete sync must and may have created.

    ``may`` holds eligible chats that crossed the 30-minute settle line while the test ran:
    whether a given run saw them as finished depends on its clock, so they may or may not
    have a ticket yet, but never two."""

    must: frozenset[str]
    may: frozenset[str]
    restricted: frozenset[str]  # eligible chats whose transfer needs a ledger row

    @property
    def must_ext(self) -> set[str]:
        return {f"snapengage:{c}" for c in self.must}

    @property
    def allowed_ext(self) -> set[str]:
        return {f"snapengage:{c}" for c in self.must | self.may}


def expected(truth: list[dict[str, Any]], first_start: datetime, last_start: datetime) -> Expected:
    """``first_start``: when the first sync began; ``last_start``: when the last one began."""
    lo, hi = first_start - SETTLE, last_start - SETTLE + timedelta(seconds=5)
    must, may, restricted = set(), set(), set()
    for row in truth:
        if not eligible(row):
            continue
        created = parse_iso(row["created_at"])
        if created <= lo:
            must.add(row["id"])
        elif created <= hi:
            may.add(row["id"])
        restricted.add(row["id"])  # a UK controller: every chat sent to the US
    return Expected(frozenset(must), frozenset(may), frozenset(restricted))


def ticket_counts(sb: Sandbox) -> Counter[str]:
    return Counter(t["external_id"] for t in sb.tickets() if not t["deleted"])


def ledger_case_ids(ledger: Path) -> Counter[str]:
    import sqlite3

    with sqlite3.connect(ledger) as conn:
        return Counter(
            r[0] for r in conn.execute("SELECT case_id FROM events WHERE event = 'transfer'")
        )


def _hash(conn: Any, row: dict[str, Any]) -> str:
    """Version 3: SHA-256 of prev_hash, seq and the stored record; version 1 (chain_version
    NULL): chain.row_hash; version 2: SHA-256 of prev_hash, a newline and SQLite's
    json_object over the row's columns in schema order (spelled out here, not taken from
    snapzen)."""
    import hashlib

    if row["chain_version"] == 3:  # prev_hash, seq and the stored record, newline-separated
        hashed = f"{row['prev_hash']}\n{row['seq']}\n{row['record']}".encode()
        return hashlib.sha256(hashed).hexdigest()
    if row["chain_version"] is None:  # its JSON keeps the name before schema 9
        return row_hash({**row, "transferred_at": row["recorded_at"]})

    columns = [
        "seq", "event", "case_id", "widget_id", "subject_ref", "origin_country", "recipient",
        "destination_country", "legal_basis", "mechanism_ref", "consent_variable",
        "consent_value", "consent_source", "consent_observed_at", "data_categories",
        "redactions", "ticket_id", "transferred_at", "retention_until", "run_id", "actor",
        "details", "chain_version", "prev_hash",
    ]  # fmt: skip
    # The record keys are the names before schema 9: transferred_at is the column recorded_at.
    pairs = ", ".join(f"'{c}', {'recorded_at' if c == 'transferred_at' else c}" for c in columns)
    hashed = conn.execute(
        f"SELECT CAST(prev_hash || char(10) || json_object({pairs}) AS BLOB) FROM events "
        "WHERE seq = ?",
        (row["seq"],),
    ).fetchone()[0]
    return hashlib.sha256(hashed).hexdigest()


def chain_problems(ledger: Path) -> list[str]:
    """Recompute the hash chain with chain.row_hash alone: an oracle independent of
    `snapzen ledger verify` (which the tests also run), so a bug there cannot hide one here."""
    import sqlite3

    problems: list[str] = []
    prev = GENESIS
    with sqlite3.connect(ledger) as conn:
        cursor = conn.execute("SELECT * FROM events ORDER BY seq")
        names = [d[0] for d in cursor.description]
        for expected_seq, values in enumerate(cursor, start=1):
            row = dict(zip(names, values, strict=True))
            if row["seq"] != expected_seq:
                problems.append(f"seq {row['seq']}: expected {expected_seq}")
            if row["prev_hash"] != prev:
                problems.append(f"seq {row['seq']}: prev_hash does not link")
            if _hash(conn, row) != row["hash"]:
                problems.append(f"seq {row['seq']}: hash mismatch")
            prev = row["hash"]
    return problems


def assert_exactly_once(sb: Sandbox, ledger: Path, exp: Expected) -> None:
    """Zero duplicates, zero missing, nothing extra, one ledger row per restricted ticket, and a
    chain that verifies both by recomputation and through `snapzen ledger verify`."""
    state = sb.state()
    assert state["duplicate_external_ids"] == [], "a ticket was created twice"
    counts = ticket_counts(sb)
    assert set(counts.values()) <= {1}
    created = set(counts)
    assert exp.must_ext - created == set(), f"missing tickets: {sorted(exp.must_ext - created)}"
    assert created - exp.allowed_ext == set(), (
        f"tickets for chats that must not be synced: {sorted(created - exp.allowed_ext)}"
    )
    synced_ids = {ext.removeprefix("snapengage:") for ext in created}
    rows = ledger_case_ids(ledger)
    assert set(rows.values()) <= {1}, "a transfer was recorded twice"
    assert set(rows) == synced_ids & exp.restricted, "ledger rows != restricted tickets"
    assert chain_problems(ledger) == []


def db_work_left(ledger: Path, run_start: datetime) -> int:
    """Like `status` but read straight from the database (no subprocess): pushing cases, failed
    ones with attempts left, and pending chats that were already settled when the run began."""
    import sqlite3

    settled = (run_start - SETTLE).isoformat(timespec="seconds").replace("+00:00", "Z")
    with sqlite3.connect(ledger) as conn:
        row = conn.execute(
            """SELECT
                 SUM(status = 'pushing'),
                 SUM(status = 'failed' AND attempts < ?),
                 SUM(status = 'pending' AND started_at IS NOT NULL AND started_at <= ?)
               FROM cases""",
            (MAX_ATTEMPTS, settled),
        ).fetchone()
    return sum(int(v or 0) for v in row)


def verify_cli(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return snapzen(env, "ledger", "verify")


# What make_sandbox's sandboxes are unless a test says otherwise.
SANDBOX_DEFAULTS: dict[str, Any] = {
    "chats": 80, "widgets": 2, "days": 3, "seed": 7, "long_transcripts": 0, "job_seconds": 0.2,
}  # fmt: skip


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    """Factory; every sandbox made is stopped at teardown even when the test fails."""
    made: list[Sandbox] = []

    def factory(**overrides: Any) -> Sandbox:
        sb = Sandbox(SandboxConfig(**{**SANDBOX_DEFAULTS, **overrides}))
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        sb.stop()


def now_utc() -> datetime:
    return datetime.now(UTC)


def skip_zendesk_clock(sb: Sandbox, seconds: float) -> None:
    """Move the sandbox's Zendesk clock ``seconds`` ahead: its jobs finish and its tickets
    archive as if that time had passed, without the test sleeping through it."""
    store = sb.app.store
    with store.lock:
        clock = store.clock
        store.clock = lambda: clock() + seconds


def let_search_index(sb: Sandbox) -> None:
    """Move the Zendesk clock past search's index lag: tickets made so far are searchable (a
    test's "this ticket has been there a while")."""
    skip_zendesk_clock(sb, sb.config.search_index_lag_seconds)
