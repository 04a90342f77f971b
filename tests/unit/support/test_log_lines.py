"""Every JSON log line: UTC timestamp with Z, level, event; inside a run, run_id and run_kind
(on the pass's worker threads too) and not after it; repeated warnings logged once."""

from __future__ import annotations

import io
import json
import re
import threading

from snapzen.support.log import bound_run, configure_logging, get_logger, logs_to, once

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_every_line_has_timestamp_level_event_and_the_run_inside_one() -> None:
    configure_logging("info", "json")
    out = io.StringIO()
    log = get_logger("test")
    with logs_to(out):
        log.info("before_run")
        with bound_run("run-1", "sync"):
            log.warning("in_run")
            worker = threading.Thread(target=lambda: log.info("on_a_worker_thread"))
            worker.start()
            worker.join()
        log.info("scheduler_stopped")
    before, inside, threaded, after = lines(out.getvalue())
    for line in (before, inside, threaded, after):
        assert STAMP.match(str(line["timestamp"])) and line["level"] and line["event"]
    assert inside["run_id"] == threaded["run_id"] == "run-1"
    assert inside["run_kind"] == threaded["run_kind"] == "sync"
    assert inside["level"] == "warning"
    assert "run_id" not in before and "run_id" not in after  # not the previous pass's id


def test_once_per_process() -> None:
    assert once("test.deprecated_token", "zendesk") is True
    assert once("test.deprecated_token", "zendesk") is False
    assert once("test.deprecated_token", "snapengage") is True


def test_a_warning_every_pass_would_repeat_is_logged_once(tmp_path: object) -> None:
    import sqlite3

    import sqlite_utils

    from snapzen.ledger.store.db import checkpoint_wal

    configure_logging("info", "json")
    path = f"{tmp_path}/wal.db"
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA journal_mode=WAL")
    db.conn.execute("PRAGMA busy_timeout=0")  # the checkpoint gives up at once
    db["t"].insert({"a": 1})
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # an auditor's open snapshot
    db["t"].insert({"a": 2})
    out = io.StringIO()
    with logs_to(out):
        for _ in range(3):  # three passes of `snapzen run`
            checkpoint_wal(db)
    events = [line["event"] for line in lines(out.getvalue())]
    assert events.count("wal_checkpoint_incomplete") == 1
