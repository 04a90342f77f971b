"""The conventions of a well-kept CLI: --version, global options before the command,
-q/-v, completion, examples and readable placeholders in every command's help.

The commands are read from the command tree itself (every group and command under the root),
so a command added later is held to the same conventions without being listed here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from snapzen import __version__
from snapzen.cli import app
from snapzen.cli.common import GLOBAL

runner = CliRunner()


def _walk(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    found = [(" ".join(path), command)] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, (*path, name))
    return found


def command_paths() -> list[str]:
    """Every command and group under the root, e.g. `sync`, `ledger`, `ledger hold add`."""
    return [path for path, _ in _walk(typer.main.get_command(app))]


def leaf_paths() -> list[str]:
    """The commands that run something (not the groups that hold them)."""
    return [
        path
        for path, command in _walk(typer.main.get_command(app))
        if not getattr(command, "commands", None) or getattr(command, "invoke_without_command", 0)
    ]


# Typer's own options, shown as it shows them (their `<bool>` cannot be changed through its
# public options); every option snapzen declares has a readable placeholder.
TYPER_OWN = ("--help", "--install-completion", "--show-completion")


def test_the_tree_is_walked() -> None:
    paths = command_paths()
    assert {"sync", "status", "ledger", "ledger list", "ledger hold add", "retention sweep"} <= set(
        paths
    )
    assert "ledger requests open" in paths and "ledger" not in leaf_paths()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("snapzen ")
    assert re.match(r"snapzen \d+\.\d+", result.stdout)
    assert __version__


@pytest.mark.parametrize("path", leaf_paths())
def test_every_command_has_examples_and_readable_placeholders(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "Examples:" in result.stdout, f"add examples to the docstring of `snapzen {path}`"
    assert f"$ snapzen {path}" in result.stdout, path
    # Arguments show their type beside their name, as Typer always shows it.
    options = re.sub(r"─ Arguments ─.*?╰", "", result.stdout, flags=re.S)
    ours = [
        line for line in options.splitlines() if not any(f"{name} " in line for name in TYPER_OWN)
    ]
    for raw in ("<list[", "<%Y", "<bool>", "<str>", "<int>", "<float>", "<path>", "<datetime"):
        assert not any(raw in line for line in ours), (raw, path)


def test_config_before_the_command_is_used(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[zendesk]\nsubdomian = "acme"\n')
    for args in (["-c", str(config), "status"], ["--config", str(config), "status"],
                 ["status", "-c", str(config)]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and f"zendesk.subdomian in {config};" in result.stderr


def test_a_commands_own_config_is_not_left_for_the_next_one(tmp_path: Path) -> None:
    """Run without the top-level app (as tests and embedders do), a command's --config is
    used for that command only."""
    from snapzen.cli import ledger

    config = tmp_path / "c.toml"
    config.write_text('[zendesk]\nsubdomian = "acme"\n')
    result = runner.invoke(ledger.app, ["reconcile", "--config", str(config)])
    assert result.exit_code == 2 and f"zendesk.subdomian in {config};" in result.stderr
    assert GLOBAL.config is None


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


def _options(path: str) -> set[str]:
    command = dict(_walk(typer.main.get_command(app)))[path]
    return {name for param in getattr(command, "params", []) for name in param.opts}


# Commands that change state take the writer lock (--wait) and record who ran them (--actor);
# `ledger reapply-erasures` replays the actors its journal lines name, and `ledger checkpoint`
# takes the lock only to read the head and the journal at one moment (it writes no row). A few
# record without a --wait (they refuse, or take the lock themselves, when it is held): the
# tree cannot tell those apart, so they are named here.
NO_ACTOR = {"ledger reapply-erasures", "ledger checkpoint"}
RECORD_WITHOUT_WAIT = ["init", "ledger restore", "ledger reconcile"]
# What the tree cannot say a command needs before it reads --format: one of two options.
EITHER_OR = {"retry": ["--all-failed"]}


def _sample(name: str) -> str:
    """A value a required parameter accepts, by its name."""
    if any(word in name for word in ("since", "until", "day", "as-of", "date")):
        return "2026-01-01"
    if "email" in name:
        return "person@example.com"
    return "-" if name == "file" else "x"


def needed_first(path: str) -> list[str]:
    """The required options and arguments of ``path``, from the tree, with sample values."""
    command = dict(_walk(typer.main.get_command(app)))[path]
    args: list[str] = []
    for param in getattr(command, "params", []):
        if not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(_sample(param.name or ""))
        else:
            args += [param.opts[0], _sample(param.opts[0])]
    return [*args, *EITHER_OR.get(path, [])]


def writers() -> list[str]:
    waiting = [p for p in leaf_paths() if "--wait" in _options(p) and p not in NO_ACTOR]
    return waiting + RECORD_WITHOUT_WAIT


def summaries() -> list[str]:
    """Every command that prints data for scripts: it takes --json."""
    return [p for p in leaf_paths() if "--json" in _options(p)]


def test_the_lists_are_read_from_the_tree() -> None:
    assert needed_first("backfill") == ["--since", "2026-01-01", "--until", "2026-01-01"]
    assert needed_first("ledger export") == ["-"] and needed_first("status") == []
    assert {"sync", "backfill", "retry", "dismiss", "retention sweep", "ledger erase",
            "ledger access", "ledger hold add"} <= set(writers())  # fmt: skip
    assert {"sync", "status", "run", "retry", "retention sweep", "ledger requests",
            "ledger hold list", "backfill", "dismiss",
            "ledger list"} <= set(summaries())  # fmt: skip


@pytest.mark.parametrize("path", writers())
def test_commands_that_write_take_actor(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert "--actor" in result.stdout, f"`snapzen {path}` records a run without --actor"


@pytest.mark.parametrize("path", summaries())
def test_summaries_take_format_table_or_json_and_the_json_alias(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert "--format" in result.stdout and "--json" in result.stdout, path
    both = runner.invoke(app, [*path.split(), *needed_first(path), "--json", "--format", "table"])
    assert both.exit_code == 2 and "disagree" in both.stderr, path
