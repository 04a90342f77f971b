"""Redaction before transfer, end to end: a sync sends the Zendesk comment with visible markers
and without the values; the ledger records categories and counts, never the values. And a bad
redaction config stops every command at start with exit 2 and one line naming it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands import service
from snapzen.ledger.store.db import open_db
from snapzen.policy.redaction import DETECTOR_VERSION
from snapzen.support.errors import ConfigError
from snapzen.support.settings import load_settings
from tests.fakes import SandboxApis, make_case, recent

CARD = "4111 1111 1111 1111"  # Visa test number (Luhn-valid)
CARD_2 = "5555-5555-5555-4444"  # Mastercard test number, hyphenated
IBAN = "GB82 WEST 1234 5698 7654 32"  # the ISO 13616 example, paper form
SECRETS = (CARD, CARD_2, IBAN)


def compact(text: str) -> str:
    """Digits and letters only, so a value split by spaces, hyphens or lines is still found."""
    return re.sub(r"[^0-9A-Za-z]", "", text)


def forms(value: str) -> tuple[str, str]:
    return value, compact(value)


def test_sync_sends_markers_not_values_and_ledger_counts_only(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch, apis: SandboxApis
) -> None:
    monkeypatch.setenv("SNAPZEN_REDACTION__ENABLED", "card,iban")
    settings = load_settings()
    apis.add_cases(
        "w1",
        [
            make_case(
                "paying",
                started=recent(200),
                messages=[
                    ("", f"Please charge my card {CARD}, expiry 12/29"),
                    ("Agent Smith", "We cannot take cards in chat."),
                    ("", f"Then refund to IBAN {IBAN} or the other card {CARD_2}"),
                ],
            )
        ],
    )
    result = service.sync(settings)
    assert result.counts.created == 1 and result.exit_code == 0

    comment = "\n".join(c["value"] for c in apis.tickets[0]["comments"])
    assert comment.count("[REDACTED:card]") == 2
    assert comment.count("[REDACTED:iban]") == 1
    assert "expiry 12/29" in comment  # only the values go; the conversation stays readable
    for value in SECRETS:
        raw, squeezed = forms(value)
        assert raw not in comment and squeezed not in compact(comment)

    db = open_db(settings.ledger.path)
    redactions = db.execute(
        "SELECT redactions FROM events WHERE case_id = 'paying' AND event = 'transfer'"
    ).fetchone()[0]
    assert json.loads(redactions) == {
        "detector": DETECTOR_VERSION,
        "counts": {"card": 2, "iban": 1},
    }
    ledger_text = "\n".join(str(row) for row in db.execute("SELECT * FROM events"))
    for value in SECRETS:
        raw, squeezed = forms(value)
        assert raw not in ledger_text and squeezed not in compact(ledger_text)
    # The raw payload that held them is gone from the database too (see test_minimisation).
    db.conn.close()
    on_disk = b"".join(
        p.read_bytes() for p in settings.ledger.path.parent.glob(settings.ledger.path.name + "*")
    )
    for value in SECRETS:
        assert value.encode() not in on_disk


def test_default_rule_set_is_cards_only(sync_env: Path, apis: SandboxApis) -> None:
    """The rules really come from the setting: by default an IBAN is sent as it is."""
    settings = load_settings()
    assert settings.redaction.enabled == ["card"]
    apis.add_cases(
        "w1",
        [make_case("iban-only", started=recent(200), messages=[("", f"IBAN {IBAN}, card {CARD}")])],
    )
    service.sync(settings)
    comment = apis.tickets[0]["comments"][0]["value"]
    assert IBAN in comment and CARD not in comment and "[REDACTED:card]" in comment
    redactions = open_db(settings.ledger.path).execute(
        "SELECT redactions FROM events WHERE event = 'transfer'"
    )
    assert json.loads(redactions.fetchone()[0])["counts"] == {"card": 1}


def test_a_card_typed_as_the_name_reaches_neither_subject_nor_requester(
    sync_env: Path, apis: SandboxApis
) -> None:
    settings = load_settings()
    typed = "4111\u00a01111\u00a01111\u00a01111"
    apis.add_cases("w1", [make_case("card-name", started=recent(200), name=f"Jo {typed}")])
    service.sync(settings)
    ticket = apis.tickets[0]
    assert ticket["requester"]["name"] == "Jo [REDACTED:card]"
    assert ticket["subject"].startswith("Chat with Jo [REDACTED:card] on ")
    assert "1111" not in json.dumps(ticket)
    redactions = open_db(settings.ledger.path).execute(
        "SELECT redactions FROM events WHERE event = 'transfer'"
    )
    assert json.loads(redactions.fetchone()[0])["counts"] == {"card": 1}


# ---------------------------------------------------------------- invalid configuration

BAD_CONFIGS = [
    pytest.param(
        {"SNAPZEN_REDACTION__ENABLED": "card,credit_cards"},
        None,
        ("redaction.enabled", "credit_cards"),
        id="unknown-rule-env",
    ),
    pytest.param(
        {},
        '[redaction]\nenabled = ["card", "passport"]\n',
        ("redaction.enabled", "passport"),
        id="unknown-rule-toml",
    ),
    pytest.param(
        {},
        '[redaction]\nextra_patterns = { order_no = "ORD-[0-9" }\n',
        ("redaction.extra_patterns", "order_no"),
        id="bad-regex-toml",
    ),
    pytest.param(
        {"SNAPZEN_REDACTION__EXTRA_PATTERNS": '{"ticket_ref": "(unclosed"}'},
        None,
        ("redaction.extra_patterns", "ticket_ref"),
        id="bad-regex-env",
    ),
]


@pytest.mark.parametrize(("env", "toml", "names"), BAD_CONFIGS)
@pytest.mark.parametrize(
    "command",
    [["sync"], ["retention", "sweep"], ["status"]],
    ids=["sync", "retention", "status"],
)
def test_invalid_redaction_config_exits_2_with_one_line_before_any_call(
    sync_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    apis: SandboxApis,
    env: dict[str, str],
    toml: str | None,
    names: tuple[str, ...],
    command: list[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = list(command)
    if toml is not None:
        config = tmp_path / "snapzen.toml"
        config.write_text(toml)
        args += ["--config", str(config)]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("snapzen: error: setting redaction")
    for name in names:
        assert name in lines[0]
    assert apis.requests == {}  # no network call
    with sqlite3.connect(sync_env) as conn:  # not even a runs row was written
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_invalid_redaction_config_is_a_config_error_in_the_library(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library caller of load_settings gets the redaction checks the CLI gets."""
    monkeypatch.setenv("SNAPZEN_REDACTION__ENABLED", "nope")
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "QQ")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    # Reported with pydantic's own problems, each naming its setting and where it was set.
    message = str(raised.value)
    assert "setting redaction.enabled (SNAPZEN_REDACTION__ENABLED): unknown redaction" in message
    assert "setting transfer.controller_country (SNAPZEN_TRANSFER__CONTROLLER_COUNTRY)" in message
