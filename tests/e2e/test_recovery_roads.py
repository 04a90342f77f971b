"""Issue 23: restore and adoption with the real CLI against the sandbox, where something has
already gone wrong: a sync killed after its import POST, imports left ambiguous, a new
ledger meeting a Zendesk full of snapzen's tickets. Nothing is created twice; every added
case knows its person."""

from __future__ import annotations

import signal
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.rights.subjects import subject_ref
from snapzen.sandbox.app import Fault, FaultInjector
from tests.e2e.cli_server import start_cli
from tests.e2e.conftest import (
    LEDGER_KEY,
    cli_env,
    skip_zendesk_clock,
    snapzen,
    ticket_counts,
    verify_cli,
)

pytestmark = pytest.mark.e2e

JOB_SECONDS = 4.0  # an import job runs this long: a restore reading Zendesk once misses it
# Recovery trusts a lookup only once Zendesk lists no unfinished import job.
GRACE = "120"
QUICK_JOBS = 0.2  # the sandbox's default


def _env(sb: Any, ledger: Path, **extra: str) -> dict[str, str]:
    return cli_env(
        sb,
        ledger,
        SNAPZEN_ZENDESK__RECOVERY_GRACE_SECONDS=GRACE,
        SNAPZEN_ZENDESK__BATCH_SIZE="5",
        **extra,
    )


def _no_duplicates(sb: Any) -> int:
    counts = ticket_counts(sb)
    duplicated = {ext: n for ext, n in counts.items() if n > 1}
    assert duplicated == {}, f"{len(duplicated)} external ids with several tickets"
    return len(counts)


def _pushing(ledger: Path) -> tuple[int, int]:
    """(cases pushing, of which with a job id), read while a sync writes."""
    if not ledger.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute(
                "SELECT COUNT(*), COUNT(job_id) FROM cases WHERE status = 'pushing'"
            ).fetchone()
    except sqlite3.OperationalError:
        return 0, 0
    return int(row[0]), int(row[1])


def _kill_after_a_post(env: dict[str, str], ledger: Path) -> tuple[int, int]:
    """Start `snapzen sync` and SIGKILL it once an import POST was answered (a case pushing
    with its job id): (cases pushing, of which with a job id) as the killed run left them."""
    proc = start_cli(["sync"], env)
    try:
        for _ in range(600):  # bounded: at most ~60 s
            if _pushing(ledger)[1] > 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    pushing, with_job = _pushing(ledger)
    assert with_job > 0, "the kill must land after an import POST was answered"
    return pushing, with_job


class _JobsEndOnceWaitedFor(FaultInjector):
    """Zendesk as a restore or an adoption meets it after a sync went wrong: the sync's import
    jobs (JOB_SECONDS long) are still running when the command first lists the unfinished
    jobs, and have finished by the time it lists them again: the account's clock skips to
    their end (instead of the test sleeping through them). Jobs created after that take the
    sandbox's default time, so the next sync does not wait on them either."""

    def __init__(self, sb: Any) -> None:
        super().__init__(sb.config)
        self.sb = sb
        self.listings = 0

    def draw(self, mutating: bool, endpoint: str = "") -> Fault | None:
        if endpoint == "zendesk.job_statuses_list":
            self.listings += 1
            if self.listings == 2:
                store = self.sb.app.store
                with store.lock:
                    end = max((job.done_at for job in store.jobs.values()), default=0.0)
                    skip_zendesk_clock(self.sb, max(0.0, end - store.clock()))
                    store.cfg = replace(store.cfg, job_seconds=QUICK_JOBS)
        return super().draw(mutating, endpoint)


def test_restore_after_a_sync_killed_after_its_post_creates_nothing_twice(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Jobs long enough that the restore, started right after the kill, finds them running.
    sb = make_sandbox(chats=60, seed=31, job_seconds=2 * JOB_SECONDS)
    ledger = tmp_path / "ledger.db"
    env = _env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0

    pushing, with_job = _kill_after_a_post(env, ledger)
    assert sb.state()["jobs"]["in_flight"] > 0, "its job is still running in Zendesk"
    sb.app.faults = _JobsEndOnceWaitedFor(sb)

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert f"{pushing} case(s) in flight in the replaced ledger" in restored.stdout, restored.stdout
    assert "waiting for import jobs" in restored.stderr
    after_restore = _no_duplicates(sb)
    assert after_restore >= with_job

    again = snapzen(env, "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    total = _no_duplicates(sb)
    assert total >= after_restore
    with sqlite3.connect(ledger) as conn:  # the ledger names every ticket Zendesk holds
        named = {r[0] for r in conn.execute("SELECT ticket_id FROM cases WHERE ticket_id > 0")}
    assert {t["id"] for t in sb.tickets() if not t["deleted"]} == named
    assert verify_cli(env).returncode == 0


class _AmbiguousPosts(FaultInjector):
    """Every import POST is processed, then answered 502: the client cannot know."""

    def draw(self, mutating: bool, endpoint: str = "") -> Fault | None:
        return Fault(kind="http_502", after=True) if mutating else None


def test_restore_right_after_a_sync_with_ambiguous_imports_creates_nothing_twice(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=40, seed=32, job_seconds=2 * JOB_SECONDS)
    ledger = tmp_path / "ledger.db"
    env = _env(sb, ledger)
    assert snapzen(env, "init").returncode == 0
    backup = tmp_path / "backup.db"
    assert snapzen(env, "ledger", "backup", str(backup)).returncode == 0

    sb.app.faults = _AmbiguousPosts(sb.config)
    ambiguous = snapzen(env, "sync")
    assert ambiguous.returncode in (0, 1, 3), ambiguous.stderr
    pushing, with_job = _pushing(ledger)
    assert pushing > 0 and with_job == 0, "the sync ended with ambiguous imports"
    sb.app.faults = _JobsEndOnceWaitedFor(sb)  # Zendesk answers normally again

    restored = snapzen(env, "ledger", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert f"{pushing} case(s) in flight in the replaced ledger" in restored.stdout, restored.stdout
    assert _no_duplicates(sb) == pushing  # every ambiguous import did create its ticket

    again = snapzen(env, "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _no_duplicates(sb) >= pushing
    assert verify_cli(env).returncode == 0


def test_adopt_while_a_killed_syncs_imports_still_run_creates_nothing_twice(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=60, seed=37, job_seconds=2 * JOB_SECONDS)
    first = tmp_path / "first.db"
    assert snapzen(_env(sb, first), "init").returncode == 0
    _kill_after_a_post(_env(sb, first), first)
    assert sb.state()["jobs"]["in_flight"] > 0
    sb.app.faults = _JobsEndOnceWaitedFor(sb)

    lost = tmp_path / "new" / "snapzen.db"  # the ledger is lost with the machine
    env = _env(sb, lost)
    adopted = snapzen(env, "init", "--adopt", "--no-erasure-journal")
    assert adopted.returncode == 0, adopted.stderr
    assert "waiting for import jobs" in adopted.stderr
    assert sb.state()["jobs"]["in_flight"] == 0
    in_zendesk = _no_duplicates(sb)
    assert f"adopted {in_zendesk}" in adopted.stdout, adopted.stdout

    again = snapzen(env, "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _no_duplicates(sb) >= in_zendesk
    assert verify_cli(env).returncode == 0


def test_adopted_cases_know_their_person_erase_and_shared_email(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from tests.e2e.test_data_subject_rights import _share_an_email

    sb = make_sandbox(chats=40, seed=5)
    shared, mine, theirs = _share_an_email(sb)
    first = tmp_path / "first.db"
    assert snapzen(_env(sb, first), "init").returncode == 0
    assert snapzen(_env(sb, first), "sync").returncode == 0
    created = _no_duplicates(sb)

    lost = tmp_path / "new" / "snapzen.db"  # the first ledger is lost
    env = _env(sb, lost)
    adopted = snapzen(env, "init", "--adopt", "--no-erasure-journal")
    assert adopted.returncode == 0, adopted.stderr
    assert f"adopted {created}" in adopted.stdout
    key = LEDGER_KEY.encode()
    with sqlite3.connect(lost) as conn:
        refs = dict(conn.execute("SELECT case_id, subject_ref FROM cases"))
        named = conn.execute("SELECT COUNT(name_ref) FROM cases").fetchone()[0]
        events = conn.execute(
            "SELECT COUNT(subject_ref) FROM events WHERE event = 'adopted'"
        ).fetchone()[0]
    assert refs[mine] == refs[theirs] == subject_ref(key, shared)
    assert named > 0 and events == sum(1 for r in refs.values() if r)

    # The shared-email guard covers adopted cases: two names under one email, exit 2.
    out = tmp_path / "pack"
    from tests.fakes import RECORD_ENV  # the pack's Art. 15 fields: refused otherwise

    refused = snapzen(
        {**env, **RECORD_ENV}, "ledger", "access", "--email", shared, "--out", str(out)
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "2 different people" in refused.stderr and not out.exists()

    # Erasure by email finds an adopted person's ticket and deletes it.
    emails = {c["id"]: c.get("requested_by") for c in sb.app.dataset.cases}
    case_id = next(
        c for c, r in sorted(refs.items())
        if r and c not in (mine, theirs) and r == subject_ref(key, emails.get(c))
    )  # fmt: skip
    email = str(emails[case_id])
    tickets = {t["id"] for t in sb.tickets() if t["external_id"] == f"snapengage:{case_id}"}
    erased = snapzen(env, "ledger", "erase", "--email", email)
    assert erased.returncode == 0, erased.stdout + erased.stderr
    live = {t["id"] for t in sb.tickets() if not t["deleted"]}
    assert tickets and not tickets & live
    assert verify_cli(env).returncode == 0


def test_init_and_the_first_sync_refuse_where_snapzens_tickets_exist(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=33)
    first = tmp_path / "first.db"
    assert snapzen(_env(sb, first), "init").returncode == 0
    assert snapzen(_env(sb, first), "sync").returncode == 0
    created = _no_duplicates(sb)
    assert created > 0

    elsewhere = tmp_path / "elsewhere" / "snapzen.db"
    env = _env(sb, elsewhere)
    missing = snapzen(env, "sync")
    assert missing.returncode == 2
    assert "`snapzen init --adopt`" in missing.stderr
    assert missing.stderr.index("--adopt") < missing.stderr.index("`snapzen init`")

    refused = snapzen(env, "init")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{created} ticket(s)" in refused.stderr and "init --adopt" in refused.stderr
    assert not elsewhere.exists()

    # A ledger made without asking (an older snapzen, a copy of an empty one): its first
    # sync and backfill ask the same question and send nothing.
    from tests.e2e.conftest import init_ledger

    init_ledger(env)
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    for args in (["sync"], ["backfill", "--since", yesterday, "--until", yesterday]):
        first_pass = snapzen(env, *args)
        assert first_pass.returncode == 2, (args, first_pass.stdout, first_pass.stderr)
        assert "never synced" in first_pass.stderr and "init --adopt" in first_pass.stderr
    assert _no_duplicates(sb) == created
