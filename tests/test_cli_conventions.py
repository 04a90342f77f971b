"""The conventions of a well-kept CLI: --version, global options before the command,
-q/-v, completion, examples and readable placeholders in every command's help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from snapzen import __version__
from snapzen.cli import app
from snapzen.cli.common import GLOBAL
from snapzen.cli.helptext import EXAMPLES

runner = CliRunner()


def command_paths() -> list[str]:
    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        if subs:
            paths += [f"{name} {sub}" for sub in subs]
        else:
            paths.append(name)
    return paths


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("snapzen ")
    assert re.match(r"snapzen \d+\.\d+", result.stdout)
    assert __version__


@pytest.mark.parametrize("path", command_paths())
def test_every_command_has_examples_and_readable_placeholders(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert path in EXAMPLES, f"add examples for `snapzen {path}` to snapzen/cli/helptext.py"
    assert "Examples:" in result.stdout and f"$ snapzen {path.split()[0]}" in result.stdout
    for raw in ("<list[", "<%Y", "<bool>", "<str>", "<int>", "<float>", "<path>"):
        assert raw not in result.stdout.replace("<path>  ", "").split("Arguments")[-1], raw


def test_config_before_the_command_is_used(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[zendesk]\nsubdomian = "acme"\n')
    for args in (["-c", str(config), "status"], ["--config", str(config), "status"],
                 ["status", "-c", str(config)]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and f"zendesk.subdomian in {config};" in result.stderr


def test_quiet_and_verbose_set_the_log_level_for_that_invocation_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = runner.invoke(app, ["-q", "-v", "status"])
    assert result.exit_code == 2 and "not both" in result.output
    seen: list[str] = []
    monkeypatch.setattr(
        "snapzen.support.log.configure_logging", lambda level, fmt: seen.append(level)
    )
    for args in (["-v", "status"], ["-q", "status"], ["status"]):
        runner.invoke(app, args)
    assert seen == ["debug", "warning", "info"]
    assert GLOBAL.verbosity == 0 and GLOBAL.config is None  # nothing left for the next one


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


# Commands that change state record who ran them; commands that end on a summary print it as
# a table (text) or JSON for scripts, with --json as the alias.
RECORD_AN_ACTOR = ("sync", "backfill", "retry", "dismiss", "retention sweep", "ledger erase",
                   "ledger access", "ledger reconcile")  # fmt: skip
PRINT_A_SUMMARY = {  # command: the options it needs to get as far as reading --format
    "sync": [], "status": [], "run": [], "retry": ["--all-failed"], "retention sweep": [],
    "ledger requests": [], "ledger hold list": [], "ledger reconcile": [],
    "backfill": ["--since", "2026-01-01", "--until", "2026-01-02"],
    "dismiss": ["--case", "CASE", "--reason", "why"],
}  # fmt: skip


@pytest.mark.parametrize("path", RECORD_AN_ACTOR)
def test_commands_that_write_take_actor(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert "--actor" in result.stdout, f"`snapzen {path}` records a run without --actor"


@pytest.mark.parametrize("path", PRINT_A_SUMMARY)
def test_summaries_take_format_table_or_json_and_the_json_alias(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert "--format" in result.stdout and "--json" in result.stdout, path
    both = runner.invoke(
        app, [*path.split(), *PRINT_A_SUMMARY[path], "--json", "--format", "table"]
    )
    assert both.exit_code == 2 and "disagree" in both.stderr, path
