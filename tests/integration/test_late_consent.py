"""Consent captured at the end of a chat arrives late: a case withheld because no consent
value was present is decided again when a later fetch (within the overlap) brings one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.ledger.store.db import open_db
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()


def _row(ledger: Path, case_id: str) -> tuple[str, str | None, str | None]:
    row = (
        open_db(ledger)
        .execute("SELECT status, reason, raw FROM cases WHERE case_id = ?", (case_id,))
        .fetchone()
    )
    return row[0], row[1], row[2]


def test_a_late_consent_value_turns_a_withheld_case_into_a_transfer(
    sync_env: Path, apis: SandboxApis
) -> None:
    started = recent(3600)
    apis.add_cases(
        "w1",
        [
            make_case("late", started=started, consent=None),
            make_case("refused", started=started, consent="no"),
        ],
    )
    assert runner.invoke(app, ["sync"]).exit_code == 0
    assert _row(sync_env, "late") == ("withheld", "no_consent_recorded", None)
    assert not apis.tickets

    # The next fetch (same day, inside the overlap) carries the value set at the chat's end.
    apis.add_cases(
        "w1",
        [
            make_case("late", started=started, consent="yes"),
            make_case("refused", started=started, consent="yes"),  # a refusal stays final
        ],
        replace=True,
    )
    assert runner.invoke(app, ["sync"]).exit_code == 0
    assert _row(sync_env, "late")[:2] == ("synced", None)
    assert _row(sync_env, "refused")[:2] == ("withheld", "consent_refused")
    assert [t["external_id"] for t in apis.tickets] == ["snapengage:late"]
    transfers = (
        open_db(sync_env)
        .execute("SELECT case_id, legal_basis, consent_value FROM events WHERE event = 'transfer'")
        .fetchall()
    )
    assert transfers == [("late", "art49_1a", "yes")]


def test_without_a_value_the_case_stays_withheld_and_is_not_sent(
    sync_env: Path, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case("never", started=recent(3600), consent=None)])
    for _ in range(2):
        assert runner.invoke(app, ["sync"]).exit_code == 0
    assert _row(sync_env, "never") == ("withheld", "no_consent_recorded", None)
    assert not apis.tickets
