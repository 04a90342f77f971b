"""Which config file a command reads (issue 24, 1): the one named with --config, before or
after the command, always; $SNAPZEN_CONFIG only when none is named. A missing or invalid
file named either way is exit 2 with one line naming it and how it was named."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.ledger.store.db import open_db

runner = CliRunner()


def positions(config: Path, *command: str) -> list[list[str]]:
    """--config (and -c) before the command, and after it."""
    return [
        ["--config", str(config), *command],
        ["-c", str(config), *command],
        [*command, "--config", str(config)],
    ]


@pytest.fixture
def other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid file named by SNAPZEN_CONFIG, pointing at a ledger of its own."""
    ledger = tmp_path / "other.db"
    open_db(ledger, create=True).conn.close()
    path = tmp_path / "other.toml"
    path.write_text(f'[ledger]\npath = "{ledger}"\n', encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_CONFIG", str(path))
    return path


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_snapzen_config_is_used_when_no_file_is_named(other: Path) -> None:
    code, out, err = invoke(["ledger", "verify"])
    assert code == 0 and "ledger OK: 0 ledger rows" in out, err


def test_a_named_file_wins_over_snapzen_config_in_both_positions(
    other: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "prod.db"
    open_db(ledger, create=True).conn.close()
    prod = tmp_path / "prod.toml"
    prod.write_text(f'[ledger]\npath = "{ledger}"\n', encoding="utf-8")
    ledger.unlink()  # prod's ledger is gone: only a command that read prod.toml says so
    for args in positions(prod, "ledger", "verify"):
        code, _, err = invoke(args)
        assert code == 2 and str(ledger) in err, (args, err)


@responses.activate  # any HTTP call would raise ConnectionError: none may happen
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "config file {prod} (from --config) does not exist"),
        ("[zendesk\n", "config file {prod} (from --config) is not valid TOML: "),
        (b"\xff\xfe[ledger]\n", "config file {prod} (from --config) is not UTF-8 text"),
        ("[zendesk]\nsubdomian = 'acme'\n", "unknown setting zendesk.subdomian in {prod};"),
    ],
)
def test_a_missing_or_invalid_named_file_exits_2_naming_it(
    other: Path, tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    prod = tmp_path / "prod.toml"
    if isinstance(content, bytes):
        prod.write_bytes(content)
    elif content is not None:
        prod.write_text(content, encoding="utf-8")
    for args in positions(prod, "sync"):
        code, out, err = invoke(args)
        assert code == 2, (args, out, err)
        assert expected.format(prod=prod) in err, (args, err)
        assert str(other) not in err


def test_a_directory_named_as_the_file_exits_2(other: Path, tmp_path: Path) -> None:
    for args in positions(tmp_path, "status"):
        code, _, err = invoke(args)
        assert code == 2 and f"config file {tmp_path} (from --config) is a directory" in err


def test_a_missing_file_named_by_snapzen_config_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("SNAPZEN_CONFIG", str(missing))
    code, _, err = invoke(["status"])
    assert code == 2
    assert (
        err.strip() == f"snapzen: error: config file {missing} (from SNAPZEN_CONFIG) does not exist"
    )


def test_the_command_s_own_config_wins_over_the_one_before_it(other: Path, tmp_path: Path) -> None:
    before, after = tmp_path / "before.toml", tmp_path / "after.toml"
    before.write_text("[zendesk]\nsubdomian = 'a'\n", encoding="utf-8")
    after.write_text("[zendesk]\nemial = 'a@b.test'\n", encoding="utf-8")
    code, _, err = invoke(["--config", str(before), "status", "--config", str(after)])
    assert code == 2 and "zendesk.emial" in err and "subdomian" not in err
