"""A ledger that forgets on time (issue 27 item 4), with the real CLI against the sandbox.

Chats of two (or three) months that started a little over two years ago are backfilled and
synced. The retention sweep (real clock) deletes the expired tickets and forgets every month
whose retention has ended for its last day: its key is destroyed, its `cases` rows deleted,
the chain still verifies, and `ledger subject --email` for a person of that month finds
nothing and says why; the last month is untouched. A backup taken before the sweep and
restored after it does not bring the forgotten month back.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.rights.subjects import subject_ref
from snapzen.policy.transform import add_years
from tests.e2e.conftest import LEDGER_KEY, chain_problems, cli_env, init_ledger, snapzen, verify_cli
from tests.fakes import RECORD_ENV

pytestmark = pytest.mark.e2e
YEARS = 2  # transfer.retention_years default


def _past_retention(period: str, today: date) -> bool:
    year, month = int(period[:4]), int(period[5:7])
    return add_years(date(year, month, calendar.monthrange(year, month)[1]), YEARS) <= today


def _people(sb: Any, ledger: Path) -> dict[str, set[str]]:
    """{email: months of their synced chats}, for visitors the ledger keyed."""
    emails = {c["id"]: c.get("requested_by") for c in sb.app.dataset.cases}
    found: dict[str, set[str]] = {}
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute(
            "SELECT case_id, subject_ref, day FROM cases WHERE status = 'synced' "
            "AND subject_ref IS NOT NULL"
        ).fetchall()
    for case_id, ref, day in rows:
        email = emails.get(case_id)
        if email and subject_ref(LEDGER_KEY.encode(), email) == ref:
            found.setdefault(email, set()).add(str(day)[:7])
    return found


def _periods(ledger: Path) -> tuple[set[str], set[str]]:
    """(months with a key, months with cases); request periods (req-…) are not months."""
    with sqlite3.connect(ledger) as conn:
        keys = {
            r[0]
            for r in conn.execute("SELECT period FROM period_keys WHERE period NOT LIKE 'req-%'")
        }
        cases = {r[0] for r in conn.execute("SELECT DISTINCT substr(day, 1, 7) FROM cases")}
    return keys, cases


def test_the_sweep_forgets_a_month_and_a_restore_does_not_bring_it_back(
    make_sandbox: Any, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    anchor = datetime.combine(add_years(today, -YEARS), datetime.min.time(), UTC) + timedelta(
        days=10
    )
    sb = make_sandbox(chats=40, widgets=1, days=40, seed=31, anchor=anchor, retention_days=5000)
    ledger = tmp_path / "ledger.db"
    env = cli_env(sb, ledger, SNAPZEN_SNAPENGAGE__RETENTION_DAYS="5000")
    init_ledger(env)
    since = (anchor - timedelta(days=41)).date().isoformat()
    until = anchor.date().isoformat()
    done = snapzen(env, "backfill", "--since", since, "--until", until, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    keys, months = _periods(ledger)
    assert keys <= months and len(keys) >= 2
    gone = {p for p in months if _past_retention(p, today)}
    kept = months - gone
    assert gone and kept, months
    people = _people(sb, ledger)
    forgotten_person = next(e for e, ps in sorted(people.items()) if ps <= gone)
    kept_person = next(e for e, ps in sorted(people.items()) if ps & kept)

    backup = tmp_path / "before-sweep.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0
    planned = snapzen(env, "retention", "sweep", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    for period in sorted(gone):
        assert f"would forget {period}:" in planned.stdout
    assert not any(f"would forget {p}" in planned.stdout for p in kept)
    assert _periods(ledger) == (keys, months)  # a dry run changes nothing

    swept = snapzen(env, "retention", "sweep", timeout=180)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    for period in sorted(gone):
        assert f"forgot {period}: subject-reference key destroyed" in swept.stdout
    after_keys, after_months = _periods(ledger)
    assert after_keys == keys - gone and after_months == months - gone
    assert verify_cli(env).returncode == 0 and chain_problems(ledger) == []
    with sqlite3.connect(ledger) as conn:
        events = conn.execute(
            "SELECT record FROM events WHERE event = 'period_forgotten'"
        ).fetchall()
    assert len(events) == len(gone)
    forgotten_ref = subject_ref(LEDGER_KEY.encode(), forgotten_person)
    assert forgotten_ref is not None and all(forgotten_ref not in e[0] for e in events)

    lookup = snapzen(env, "ledger", "subject", "--email", forgotten_person, "--json")
    assert lookup.returncode == 0, lookup.stderr
    assert lookup.stdout.strip() in ("", "[]")
    assert "were forgotten on" in lookup.stderr and "per the retention policy" in lookup.stderr
    still = snapzen(env, "ledger", "subject", "--email", kept_person, "--json")
    assert still.returncode == 0 and '"case_id"' in still.stdout, still.stderr
    # The access pack finds nothing for them either, and says why.
    out = tmp_path / "pack"
    access = snapzen({**env, **RECORD_ENV}, "ledger", "access", "--email", forgotten_person,
                     "--out", str(out), "--received", today.isoformat())  # fmt: skip
    assert access.returncode == 0, access.stdout + access.stderr
    assert "nothing found for this person" in access.stderr
    assert "were forgotten on" in access.stderr and forgotten_person not in access.stderr

    # The backup from before the sweep, restored: the journal of forgotten months wins.
    restored = snapzen(env, "ledger", "restore", str(backup), timeout=180)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _periods(ledger) == (after_keys, after_months)
    assert verify_cli(env).returncode == 0 and chain_problems(ledger) == []
    again = snapzen(env, "ledger", "subject", "--email", forgotten_person, "--json")
    assert again.returncode == 0, again.stderr
    # Only the person's own access request (its record is the answer's evidence): no chat.
    rows = json.loads(again.stdout)
    assert rows and {row["event"] for row in rows} <= {"request", "access_provided"}
