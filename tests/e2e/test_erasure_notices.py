"""`ledger erase` with the real CLI against the sandbox: its Art. 19 notices are chained with
the erasure, so writing the response never queues for the writer lock again (issue 27 item
2). Before, a writer that took the lock between the erasure and the response left `erase`
(without --wait) blocked behind it for as long as it held the lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.rights import notices
from snapzen.support.lock import writer_lock
from tests.e2e.conftest import snapzen, verify_cli
from tests.e2e.people import ledger_events, synced_env, synced_person

pytestmark = pytest.mark.e2e

BOUND = 60.0  # a hung CLI fails the test instead of hanging it; nothing is timed


@contextmanager
def holder(ledger: Path) -> Iterator[tuple[threading.Event, threading.Event]]:
    """A thread that takes the writer lock when ``take`` is set and keeps it until the
    context ends (another writer, a sync say); ``held`` says it has it."""
    take, held, release = threading.Event(), threading.Event(), threading.Event()

    def run() -> None:
        if not take.wait(BOUND):
            return
        with writer_lock(ledger, wait=True, timeout=BOUND):
            held.set()
            release.wait(BOUND)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield take, held
    finally:
        take.set()
        release.set()
        thread.join(BOUND)


def test_erase_without_wait_never_queues_behind_a_writer_that_came_after_it(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sb = make_sandbox(chats=30, seed=5)
    ledger = tmp_path / "ledger.db"
    env = synced_env(sb, ledger)
    email, _case, tickets = synced_person(sb, ledger)
    store = sb.app.store
    search = store.search_users
    with holder(ledger) as (take, held):

        def search_then_a_writer_comes(address: str) -> Any:
            # After the erasure, `erase` looks the person's profile up in Zendesk (for the
            # tickets snapzen did not create): by then another writer holds the lock.
            take.set()
            assert held.wait(BOUND)
            return search(address)

        store.search_users = search_then_a_writer_comes  # type: ignore[method-assign]
        out = tmp_path / "out"
        done = snapzen(env, "ledger", "erase", "--email", email, "--out", str(out), timeout=BOUND)
        assert held.is_set()  # the race happened: the writer held the lock meanwhile
        store.search_users = search  # type: ignore[method-assign]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "erasure response for the person" in done.stdout
    assert set(tickets) <= store.purged
    # The notices were chained with the erasure, before the other writer came.
    told = ledger_events(ledger, notices.EVENT)
    [request] = ledger_events(ledger, "request")
    assert {e["recipient"] for e in told} == {"Zendesk", "SnapEngage"}
    assert all(e["seq"] > request["seq"] for e in told)
    assert "art19: Zendesk notified" in done.stdout
    assert verify_cli(env).returncode == 0
