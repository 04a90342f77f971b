"""No command shows a secret: not the commands that print settings (status, its health check
and metrics, the Art. 30 report, verify), not sync's errors from an API that refuses the
credentials, not the errors about the settings themselves, whether every secret comes from
the environment or from the secrets directory, valid or not."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli import app
from tests import fakes
from tests.fakes import SandboxApis, make_case, recent

runner = CliRunner()
# Every SecretStr setting, each with a value no other text holds (the ledger key is the one
# the test ledger is bound to).
SECRETS = {
    "SNAPZEN_SNAPENGAGE__API_TOKEN": "se-XYZZY-token-0001",
    "SNAPZEN_ZENDESK__API_TOKEN": "zd-PLUGH-token-0002",
    "SNAPZEN_ZENDESK__OAUTH_ACCESS_TOKEN": "zd-FROB-oauth-0003",
    "SNAPZEN_ZENDESK__OAUTH_CLIENT_SECRET": "zd-QUUX-client-0004",
    "SNAPZEN_LEDGER__KEY": fakes.LEDGER_KEY,
}
COMMANDS = [
    ["sync"],
    ["status"],
    ["status", "--json"],
    ["status", "--check"],
    ["status", "--format", "prometheus"],
    ["ledger", "report"],
    ["ledger", "report", "--format", "json"],
    ["ledger", "verify"],
    ["ledger", "serve", "--prepare-only"],
]


@pytest.fixture(autouse=True)
def _snapshots_in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`ledger serve --prepare-only` leaves its snapshot in the temporary directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _shown(values: dict[str, str]) -> list[tuple[str, int, str]]:
    """Each command's exit code and all it printed (stdout and stderr, logs included)."""
    out = []
    for args in COMMANDS:
        result = runner.invoke(app, args)
        assert "Traceback" not in result.output, (args, result.output)
        out.append((" ".join(args), result.exit_code, result.stdout + result.stderr))
    for command, _, text in out:
        for name, value in values.items():
            # The whole value, and each line of one that holds a line break.
            for part in (value, *value.splitlines()):
                assert part.strip() not in text, f"`snapzen {command}` shows {name}"
    return out


@pytest.mark.parametrize("where", ["environment", "secrets directory"])
def test_no_command_shows_a_secret(
    sync_env: Path, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    apis.add_cases("w1", [make_case("a", started=recent(200))])
    monkeypatch.setenv("SNAPZEN_RECORD__CONTROLLER", "Test Company Ltd")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in SECRETS.items():
        if where == "environment":
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
            (secrets / name.lower()).write_text(value + "\n", encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(secrets))
    shown = _shown(SECRETS)
    # The commands ran (the sandbox refuses these tokens: sync says so, without them).
    assert {command: code for command, code, _ in shown}["status --json"] in (0, 3)
    assert any("401" in text or "credentials" in text for _, _, text in shown[:1]), shown[0]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda v: v[:6] + "\n" + v[6:], id="line break"),
        pytest.param(lambda v: "\ufeff" + v, id="byte-order mark"),
        pytest.param(lambda v: v + "\x07", id="control character"),
    ],
)
def test_a_bad_secret_is_named_never_shown(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch, bad: object
) -> None:
    values = {name: bad(value) for name, value in SECRETS.items()}  # type: ignore[operator]
    del values["SNAPZEN_LEDGER__KEY"]  # any text will do as a key; the others go in headers
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for command, code, text in _shown(values):
        if command.startswith("ledger"):
            continue  # the evidence commands read no token: they run, and show none
        assert code == 2, command
        # Each bad secret named by its variable, in one line.
        assert all(f"({name}): " in text for name in values), (command, text)


def test_a_section_in_one_variable_that_is_not_json_is_named_never_shown(
    sync_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNAPZEN_ZENDESK='{"api_token": ...' (a whole section as JSON, cut short): a traceback
    (exit 1) before; now one line naming the variable."""
    token = SECRETS["SNAPZEN_ZENDESK__API_TOKEN"]
    monkeypatch.setenv("SNAPZEN_ZENDESK", json.dumps({"api_token": token})[:-1])
    for command, code, text in _shown({"SNAPZEN_ZENDESK": token}):
        assert code == 2, (command, text)
        assert (
            "SNAPZEN_ZENDESK (the [zendesk] section, or a list in it, as JSON) is not valid JSON"
            in text
        )
