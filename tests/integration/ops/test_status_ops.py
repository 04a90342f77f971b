"""`status --check` (health), `status --format prometheus|json`, the deadline guard,
`retry`, and `ledger backup`, on real SQLite files."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import service
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def synced_ledger(settings: Settings, apis: SandboxApis, n: int = 3) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(n)])
    assert service.sync(settings).exit_code == 0


# ---------------------------------------------------------------- status --check


def test_check_missing_database_is_unhealthy(sync_env: Path) -> None:
    sync_env.unlink()
    code, out, _ = cli("status", "--check")
    assert code == 1
    assert out.startswith("unhealthy:") and "does not exist" in out and out.count("\n") == 1


def test_check_unreadable_database_is_unhealthy(sync_env: Path) -> None:
    sync_env.write_bytes(b"this is not a database" * 100)
    code, out, _ = cli("status", "--check")
    assert code == 1 and "unreadable" in out


def test_check_healthy_after_a_sync_without_network(settings: Settings, apis: SandboxApis) -> None:
    synced_ledger(settings, apis)
    requests_before = dict(apis.requests)
    code, out, _ = cli("status", "--check")
    assert code == 0, out
    assert out.startswith("healthy")
    assert apis.requests == requests_before


def _age_runs(path: Path, by: timedelta) -> None:
    conn = sqlite3.connect(path)
    stamp = (datetime.now(UTC) - by).isoformat(timespec="seconds").replace("+00:00", "Z")
    conn.execute("UPDATE runs SET started_at = ?, finished_at = ?", (stamp, stamp))
    conn.commit()
    conn.close()


def test_check_unhealthy_when_no_run_completed_within_three_intervals(
    settings: Settings, apis: SandboxApis
) -> None:
    synced_ledger(settings, apis)
    _age_runs(settings.ledger.path, timedelta(minutes=44))  # schedule.every is 15m
    assert cli("status", "--check")[0] == 0
    _age_runs(settings.ledger.path, timedelta(minutes=46))
    code, out, _ = cli("status", "--check")
    assert code == 1 and "no run completed in" in out


def test_check_unhealthy_when_the_last_run_aborted(settings: Settings, apis: SandboxApis) -> None:
    synced_ledger(settings, apis)
    conn = sqlite3.connect(settings.ledger.path)
    conn.execute(
        """INSERT INTO runs (run_id, kind, actor, started_at, finished_at, outcome, error)
           VALUES ('r-bad', 'sync', 'cron', '2999-01-01T00:00:00Z', '2999-01-01T00:00:01Z',
                   'aborted', 'AuthError: 401 from SnapEngage')"""
    )
    conn.commit()
    conn.close()
    code, out, _ = cli("status", "--check")
    assert code == 1
    assert "last run r-bad (sync) aborted: AuthError: 401 from SnapEngage" in out


def test_deadline_guard_names_cases_in_sync_status_and_check(
    settings: Settings, apis: SandboxApis
) -> None:
    old = datetime.now(UTC) - timedelta(days=55)
    apis.add_cases("w1", [make_case("old-fails", started=old)])
    apis.item_errors["snapengage:old-fails"] = "Requester: Email is invalid"

    code, _, err = cli("sync")
    assert code == 3
    assert "at risk of SnapEngage's deletion: old-fails" in err

    code, out, err = cli("status")
    assert code == 3
    assert "at risk: old-fails" in err
    assert '"event": "deletion_deadline_at_risk"' in err  # logged at error level too

    code, out, _ = cli("status", "--check")
    assert code == 1 and "at risk of SnapEngage's deletion (e.g. old-fails)" in out


# ---------------------------------------------------------------- formats


SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"\\]*",?)*\})? -?[0-9.e+]+$')


def test_prometheus_format(settings: Settings, apis: SandboxApis) -> None:
    synced_ledger(settings, apis, n=3)
    code, out, _ = cli("status", "--format", "prometheus")
    assert code == 0
    families: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            families[name] = kind
        elif line.startswith("# HELP "):
            continue
        else:
            assert SAMPLE.match(line), line
            assert line.split("{")[0].split(" ")[0] in families  # TYPE precedes samples
    for name in (
        "snapzen_cases",
        "snapzen_oldest_unsynced_age_seconds",
        "snapzen_cases_at_risk",
        "snapzen_cases_failed_exhausted",
        "snapzen_raw_payloads_held",
        "snapzen_ledger_rows",
        "snapzen_last_run_timestamp_seconds",
        "snapzen_last_run_outcome",
        "snapzen_last_run_duration_seconds",
    ):
        assert families.get(name) == "gauge", name
    assert 'snapzen_cases{widget="w1",status="synced"} 3' in out
    assert 'snapzen_cases{widget="w2",status="pending"} 0' in out
    assert "snapzen_ledger_rows 5" in out  # the key binding, 3 transfers and the run
    assert 'snapzen_last_run_outcome{outcome="ok"} 1' in out
    found = re.search(r"^snapzen_last_run_timestamp_seconds (\S+)$", out, re.M)
    assert found is not None
    stamp = float(found.group(1))
    assert abs(stamp - datetime.now(UTC).timestamp()) < 60


def test_json_alias_and_format_json_agree(settings: Settings, apis: SandboxApis) -> None:
    synced_ledger(settings, apis)
    a = json.loads(cli("status", "--json")[1])
    b = json.loads(cli("status", "--format", "json")[1])
    a.pop("generated_at"), b.pop("generated_at")
    assert a == b and a["ledger_rows"] == 5  # the key binding, 3 transfers and the run


# What `status --json` holds (scripts read these keys; docs/cli.md "status"): raw payloads as a
# count and an age, never the first-seen time of the oldest one.
STATUS_KEYS = {
    "at_risk", "at_risk_count", "clock_warning", "database", "deadline_days", "decisions",
    "derogation_transfers", "derogation_transfers_last_run", "failed", "failed_exhausted",
    "flagged", "future_dated", "generated_at", "imports_in_progress", "imports_unresolved",
    "last_reconcile", "last_run", "ledger_rows", "legacy_references", "raw_oldest_age_seconds",
    "raw_payloads_held", "reconcile_due", "requests_overdue", "rights_journal_behind",
    "transfers", "widgets", "withheld_by_reason",
}  # fmt: skip


def test_status_json_keys_are_the_documented_ones(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case("c1", started=recent(200))])
    apis.item_errors["snapengage:c1"] = "Requester: Email is invalid"  # its raw payload is kept
    service.sync(settings)
    report = json.loads(cli("status", "--json")[1])
    assert report["raw_payloads_held"] == 1 and report["raw_oldest_age_seconds"] is not None
    assert set(report) == STATUS_KEYS


# ---------------------------------------------------------------- retry


def test_retry_case_after_attempts_exhausted(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.item_errors["snapengage:c1"] = "Requester: Email is invalid"
    for _ in range(settings.pipeline.max_attempts):
        service.sync(settings)
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT attempts FROM cases WHERE case_id='c1'").fetchone()[0] == 5

    del apis.item_errors["snapengage:c1"]  # someone fixed the requester in Zendesk
    code, out, _ = cli("retry", "--case", "c1", "--actor", "carol")
    assert code == 0, out
    assert "requeued 1, created 1" in out
    assert db.execute("SELECT status FROM cases WHERE case_id='c1'").fetchone()[0] == "synced"
    assert set(apis.tickets_by_external_id().values()) == {1} and len(apis.tickets) == 3
    kind, actor = db.execute(
        "SELECT kind, actor FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1"
    ).fetchone()
    assert (kind, actor) == ("retry", "carol")


def test_retry_all_failed_and_usage_errors(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.item_errors["snapengage:c0"] = "bad"
    apis.item_errors["snapengage:c2"] = "bad"
    service.sync(settings)
    runs_before = open_db(settings.ledger.path).execute("SELECT COUNT(*) FROM runs").fetchone()

    assert cli("retry")[0] == 2  # neither option
    assert cli("retry", "--case", "c0", "--all-failed")[0] == 2  # both
    code, _, err = cli("retry", "--case", "c1")
    assert code == 2 and "c1 is synced, not failed" in err
    code, _, err = cli("retry", "--case", "nope")
    assert code == 2 and "not in the ledger" in err
    db = open_db(settings.ledger.path)
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == runs_before  # refused early

    apis.item_errors.clear()
    code, out, _ = cli("retry", "--all-failed")
    assert code == 0 and "requeued 2, created 2" in out
    assert len(apis.tickets) == 3


# ---------------------------------------------------------------- backup


def test_ledger_backup_copies_and_verifies(
    settings: Settings, apis: SandboxApis, tmp_path: Path
) -> None:
    synced_ledger(settings, apis, n=4)
    target = tmp_path / "backups" / "snapzen-backup.db"
    code, out, _ = cli("ledger", "backup", str(target))
    assert code == 0, out
    assert "6 ledger row(s)" in out and "verified" in out  # binding, 4 transfers, 1 run
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT COUNT(*) FROM events WHERE event = 'transfer'").fetchone()[0] == 4
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one standalone file
    original = sqlite3.connect(settings.ledger.path)
    assert copy.execute("SELECT hash FROM events ORDER BY seq").fetchall() == (
        original.execute("SELECT hash FROM events ORDER BY seq").fetchall()
    )
    code, _, err = cli("ledger", "backup", str(target))
    assert code == 2 and "already exists" in err
    assert cli("ledger", "backup", str(target), "--overwrite")[0] == 0


def test_ledger_backup_without_database(sync_env: Path, tmp_path: Path) -> None:
    sync_env.unlink()
    code, _, err = cli("ledger", "backup", str(tmp_path / "b.db"))
    assert code == 2 and "does not exist" in err
