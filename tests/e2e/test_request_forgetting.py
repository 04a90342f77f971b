"""Request evidence forgotten on time (issue 27, gap 1), with the real CLI against the sandbox.

A person's chats are backfilled from a little over a year ago; their access, erasure and
rectification requests are answered then (the CLI's clock moved back with
SNAPZEN_CLOCK_OFFSET_SECONDS), and the Art. 19 notice the erasure owes is recorded as done.
With `record.request_evidence_years = 1`, today's retention sweep (real clock) forgets that
request period: while the notice was owed a dry run did not list it; the sweep destroys its
key, unlinks the requests (still listed, linked to nobody), deletes the erasure record, and
the chain verifies, and the rights journal no longer holds the person's lookup reference
(`ledger verify --checkpoint` still accepts a checkpoint signed before). `ledger subject`
still shows the person's chats but none of the request evidence, and says why; the access
pack explains it in plain words. Restoring a backup taken after the answers does not bring
the period back, nor does `reapply-erasures` on a database put back by hand with the
checkpoint's older journal copy.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.evidence.chain import subject_ref
from tests.e2e.conftest import (
    LEDGER_KEY,
    chain_problems,
    cli_env,
    init_ledger,
    snapzen,
    verify_cli,
)
from tests.e2e.people import requests_json, synced_person
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e
BACK = timedelta(days=400)  # when the requests were answered, before today
EVIDENCE = {
    "request", "request_paused", "request_resumed", "request_extended", "access_provided",
    "erased", "recipient_notice", "hold_added", "hold_removed",
}  # fmt: skip


def _ok(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = snapzen(env, *args, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout + done.stderr


def _request_keys(ledger: Path) -> set[str]:
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT period FROM period_keys WHERE period LIKE 'req-%'")
        return {r[0] for r in rows}


def _erased_subjects(ledger: Path) -> int:
    with sqlite3.connect(ledger) as conn:
        return int(conn.execute("SELECT count(*) FROM erased_subjects").fetchone()[0])


def _journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def _by_hand(backup: Path, ledger: Path) -> None:
    """A database put back without `ledger restore` (a copy of the file)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(backup) as source, sqlite3.connect(ledger) as target:
        source.backup(target)


def test_answered_requests_are_forgotten_after_their_retention_and_stay_forgotten(
    make_sandbox: Any, tmp_path: Path
) -> None:
    today = datetime.now(UTC)
    anchor = today - BACK - timedelta(days=15)
    sb = make_sandbox(chats=12, widgets=1, days=5, seed=41, anchor=anchor, retention_days=5000)
    ledger = tmp_path / "ledger.db"
    env = cli_env(
        sb, ledger, SNAPZEN_SNAPENGAGE__RETENTION_DAYS="5000",
        SNAPZEN_RECORD__REQUEST_EVIDENCE_YEARS="1", **RECORD_ENV,
    )  # fmt: skip
    init_ledger(env)
    since = (anchor - timedelta(days=6)).date().isoformat()
    _ok(env, "backfill", "--since", since, "--until", anchor.date().isoformat(), timeout=180)
    email, _case, _tickets = synced_person(sb, ledger)
    ref = str(subject_ref(LEDGER_KEY.encode(), email))
    early = tmp_path / "early.db"  # before any request; a copy snapzen did not make
    with sqlite3.connect(ledger) as source, sqlite3.connect(early) as copy:
        source.backup(copy)

    # A year and a month ago: the person asked, and was answered.
    then = {**env, "SNAPZEN_CLOCK_OFFSET_SECONDS": str(-BACK.total_seconds())}
    period = "req-" + (today - BACK).strftime("%Y-%m")
    _ok(then, "ledger", "access", "--email", email, "--out", str(tmp_path / "pack-then"))
    erased = _ok(then, "ledger", "erase", "--email", email)
    owed = re.findall(r"art19: \S+ to_notify \S+ \(ledger \d+, notice (\S+)\)", erased)
    assert owed, erased
    opened = _ok(then, "ledger", "requests", "open", "--type", "rectification", "--received",
                 (today - BACK).date().isoformat(), "--email", email)  # fmt: skip
    rid = re.findall(r"\breq-[0-9a-f]{12}\b", opened)[0]
    _ok(then, "ledger", "requests", "close", rid, "--outcome", "rectified")
    assert _request_keys(ledger) == {period} and _erased_subjects(ledger) == 1

    # Today, SnapEngage's 60 days long over: only the owed Art. 19 notice keeps the period.
    now_env = {**env, "SNAPZEN_SNAPENGAGE__RETENTION_DAYS": "60"}
    planned = _ok(now_env, "retention", "sweep", "--dry-run")
    assert f"would forget request period {period}" not in planned
    for notice in owed:
        when = (today - BACK).date().isoformat()
        _ok(then, "ledger", "notices", "done", notice, "--when", when)
    backup = tmp_path / "after-answers.db"
    # Made after the erasure, so it does not block. Stamps carry seconds and a copy stamped
    # with the erasure's second may predate it (it would block), so "after" is 2 s later.
    after = {**env, "SNAPZEN_CLOCK_OFFSET_SECONDS": str(2 - BACK.total_seconds())}
    _ok(after, "ledger", "backup", str(backup))
    keypair = (tmp_path / "op.pem", tmp_path / "op.pub.pem")
    _ok(env, "ledger", "keygen", *map(str, keypair))
    point = tmp_path / "off-machine" / "cp.json"
    _ok(after, "ledger", "checkpoint", str(point), "--signing-key", str(keypair[0]))
    journal = Path(f"{ledger}.erasures.jsonl")
    assert ref in journal.read_text()
    planned = _ok(now_env, "retention", "sweep", "--dry-run")
    assert f"would forget request period {period}" in planned, planned
    assert _request_keys(ledger) == {period}  # a dry run changes nothing

    swept = _ok(now_env, "retention", "sweep", timeout=180)
    assert f"forgot request period {period}" in swept, swept
    assert _request_keys(ledger) == set() and _erased_subjects(ledger) == 0
    assert verify_cli(now_env).returncode == 0 and chain_problems(ledger) == []

    # The rights journal no longer links them: their request and erasure lines are gone, the
    # period_forgotten line stays; verify accepts the checkpoint signed before the rewrite.
    lines = _journal_lines(journal)
    assert ref not in journal.read_text()
    assert {line["type"] for line in lines} >= {"period_forgotten", "compacted"}
    checked = ["--checkpoint", str(point), "--public-key", str(keypair[1])]
    done = snapzen(now_env, "ledger", "verify", *checked)
    assert done.returncode == 0, done.stdout + done.stderr
    assert journal.stat().st_mode & 0o777 == 0o600
    old_copy = Path(f"{point}.erasures.jsonl")
    assert ref in old_copy.read_text()  # an older copy keeps them until it is deleted

    # The requests stay on the record (dates, outcomes, on time or late), linked to nobody.
    listed = {r["request_id"]: r for r in requests_json(now_env)}
    assert rid in listed and len(listed) == 3
    assert {r["subject_ref"] for r in listed.values()} == {None}
    # The person's chats are still theirs (their month is kept); the evidence is not.
    lookup = snapzen(now_env, "ledger", "subject", "--email", email, "--json")
    assert lookup.returncode == 0, lookup.stderr
    rows = json.loads(lookup.stdout)
    assert rows and not {row["event"] for row in rows} & EVIDENCE
    assert "requests and their answers recorded in" in lookup.stderr
    assert "were forgotten on" in lookup.stderr

    # The access pack says so in plain words (and in codes in subject.json).
    out = tmp_path / "pack-now"
    _ok(now_env, "ledger", "access", "--email", email, "--out", str(out))
    pack = json.loads((out / "subject.json").read_text())
    assert pack["forgotten"]["request_periods"] == [period.removeprefix("req-")]
    # None of the forgotten requests' rows (an `erased` row names its chat: it stays the
    # person's through that chat while the chat's month is kept).
    assert not {r["case_id"] for r in pack["ledger"]} & set(listed)
    html = (out / "subject.html").read_text()
    assert "What we no longer hold" in html and "about the requests people made" in html
    assert period not in html  # no code: the month in words

    # A backup taken after the answers, restored: the journal of forgotten periods wins.
    _ok(now_env, "ledger", "restore", str(backup), timeout=180)
    assert _request_keys(ledger) == {"req-" + today.strftime("%Y-%m")}  # today's pack only
    assert _erased_subjects(ledger) == 0
    restored = {r["request_id"]: r for r in requests_json(now_env)}
    assert restored[rid]["subject_ref"] is None
    assert verify_cli(now_env).returncode == 0 and chain_problems(ledger) == []

    # A database put back by hand, re-applied from the checkpoint's older journal copy: the
    # forgotten requests are not re-appended, their erasure not remembered again.
    _by_hand(early, ledger)
    with sqlite3.connect(ledger) as conn:
        (last_seq,) = conn.execute("SELECT max(seq) FROM events").fetchone()
    reapplied = _ok(now_env, "ledger", "reapply-erasures", "--journal", str(old_copy))
    with sqlite3.connect(ledger) as conn:
        actors = {a for (a,) in conn.execute("SELECT actor FROM events WHERE seq > ?", (last_seq,))}
    # What the command re-applied is on its own name, not on `ledger restore`'s.
    assert "reapply-erasures" in actors and "restore" not in actors, actors
    assert not set(listed) & {r["request_id"] for r in requests_json(now_env)}, reapplied
    assert _erased_subjects(ledger) == 0 and period not in _request_keys(ledger)
    # (today's access request, not forgotten, is journalled with the person's reference)
    assert not {line["entry"].get("request_id") for line in _journal_lines(journal)} & set(listed)
    assert verify_cli(now_env).returncode == 0 and chain_problems(ledger) == []
