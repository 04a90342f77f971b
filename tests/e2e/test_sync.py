"""A full `snapzen sync` against the sandbox, checked chat by chat against its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    SETTLE,
    assert_exactly_once,
    cli_env,
    expected,
    init_ledger,
    now_utc,
    parse_iso,
    snapzen,
    status_json,
    verify_cli,
)

pytestmark = pytest.mark.e2e


def test_full_sync_then_second_sync_creates_nothing(make_sandbox: Any, tmp_path: Path) -> None:
    # The two hostile transcripts (2,000 lines; a >70,000-character message) are included here:
    # they must be split into several comments, not rejected.
    sb = make_sandbox(chats=150, seed=11, long_transcripts=2, latency_ms=1)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    init_ledger(env)

    first_start = now_utc()
    first = snapzen(env, "sync")
    assert first.returncode == 0, first.stdout + first.stderr
    exp = expected(sb.truth(), first_start, first_start)
    assert exp.must, "the data set must contain eligible chats"
    assert_exactly_once(sb, ledger, exp)
    # Withheld and ignored chats are exactly the finished, non-eligible ones.
    report = status_json(env)
    assert report["failed"] == []
    created_first = sb.state()["tickets_count"]

    # (b) A second pass creates nothing: no import POST, no new ticket, no new ledger row.
    posts = sb.state()["requests"].get("zendesk.import_create_many", 0)
    second_start = now_utc()
    second = snapzen(env, "sync")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "created 0" in second.stdout
    state = sb.state()
    exp2 = expected(sb.truth(), first_start, second_start)
    if not exp2.may:  # nothing crossed the settle line in between: strictly nothing new
        assert state["tickets_count"] == created_first
        assert state["requests"].get("zendesk.import_create_many", 0) == posts
    assert_exactly_once(sb, ledger, exp2)

    done = verify_cli(env)
    assert done.returncode == 0, done.stderr
    assert "ledger OK" in done.stdout


def test_withheld_chats_are_recorded_with_their_reason(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(chats=120, seed=3)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger)
    init_ledger(env)
    start = now_utc()
    assert snapzen(env, "sync").returncode == 0
    truth = sb.truth()
    exp = expected(truth, start, start)
    assert_exactly_once(sb, ledger, exp)
    # Finished chats without a basis: each is withheld (never sent), with its reason recorded.
    withheld = [
        r
        for r in truth
        if r["type"] == "chat"
        and not r["in_progress"]
        and r["id"] not in exp.must | exp.may
        and parse_iso(r["created_at"]) <= start - SETTLE
    ]
    assert withheld, "the data set must contain chats without a basis"
    report = status_json(env)
    total = sum(w["counts"]["withheld"] for w in report["widgets"].values())
    assert total == len(withheld)
    assert sum(report["withheld_by_reason"].values()) == total
    assert set(report["withheld_by_reason"]) <= {
        "consent_refused",
        "consent_value_not_accepted",
        "no_consent_recorded",
    }
    assert report["failed"] == []
    import sqlite3

    with sqlite3.connect(ledger) as conn:
        chained = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        decided = {
            row[0] for row in conn.execute("SELECT case_id FROM events WHERE event = 'withheld'")
        }
    assert report["ledger_rows"] == chained
    # "We did not send the refused chats": each has its withheld decision in the chain.
    assert {r["id"] for r in withheld} <= decided
