"""Every command in README.md and docs/ pastes and runs (issue 24).

Every `snapzen` line of a ```sh block parses against the real command tree (commands and
options exist, values are accepted); no block holds a synopsis (`[--case …] |`) or a literal
`…` that a shell would take as an argument. The lines that can run against the loopback
sandbox (read-only commands, dry runs, keys and checkpoints in a scratch directory) are then
pasted into bash, in document order, after a real `init` and `sync`, and must succeed.
The quick start is run as a whole by tests/e2e/ops/test_quickstart.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click import ClickException  # the Click that Typer vendors

from snapzen import __version__
from snapzen.cli.main import app
from snapzen.sandbox import Sandbox, SandboxConfig
from tests.e2e.cli_server import CliServer
from tests.fakes import LEDGER_KEY, create_ledger

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>&1", "&"}
# Commands that never end on their own (servers): their documented lines are not run here.
SERVERS = {"run", "ledger serve", "sandbox serve"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{2,}\b(?![=:])")  # CASE_ID, DIR, FILE (not $VARS)


def shell_blocks() -> Iterator[tuple[Path, str]]:
    for path in DOCS:
        for body in re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            yield path, body


def words_of(line: str) -> list[str]:
    """The words the shell would pass: a command substitution is one word once run, and a
    date variable (`since=$(date …)` above the line) a date."""
    shown = re.sub(r"\$\([^)]*\)", "SUBST", line)
    shown = re.sub(r"\$\{?(since|until)\}?", "2026-01-01", shown)
    return shlex.split(shown, comments=True)


def snapzen_lines() -> Iterator[tuple[Path, str, list[str]]]:
    """(file, line, argv after `snapzen`) for each documented snapzen invocation."""
    for path, body in shell_blocks():
        for line in (line.strip() for line in body.replace("\\\n", " ").splitlines()):
            if not line.startswith(("snapzen ", ".venv/bin/snapzen ")):
                continue  # docker, eval, exports, sqlite3: not a snapzen command line
            words = words_of(line)
            argv: list[str] = []
            for word in words[1:]:
                if word in SHELL_OPERATORS:
                    break
                argv.append(word)
            yield path, line, argv


def command_path(argv: list[str]) -> tuple[str, Any]:
    """Parse ``argv`` as the real CLI would (each group, then its command), without running
    it; a ClickException names what does not parse."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("snapzen", list(argv), resilient_parsing=False)
    names: list[str] = []
    while hasattr(command, "resolve_command"):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]  # Typer's vendored Click
        if not rest:
            break
        name, sub, remaining = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        names.append(name)
        ctx = sub.make_context(name, remaining, parent=ctx, resilient_parsing=False)
        command = sub
    return " ".join(names), ctx


def test_every_documented_command_parses() -> None:
    seen = 0
    for path, line, argv in snapzen_lines():
        try:
            command_path(argv)
        except ClickException as exc:
            pytest.fail(f"{path.name}: {line!r} does not parse: {exc.format_message()}")
        seen += 1
    assert seen >= 25  # the auditing, operations and README commands were all found


def test_no_shell_block_holds_a_synopsis_or_an_ellipsis() -> None:
    for path, body in shell_blocks():
        for line in body.splitlines():
            code = line.split(" #", 1)[0]
            assert "…" not in code, f"{path.name}: {line!r} has a literal … to paste"
            assert "[--" not in code, f"{path.name}: {line!r} is a synopsis, not a command"


def test_no_command_line_in_running_text_holds_an_ellipsis() -> None:
    # A whole command line quoted in a sentence (the node_exporter cron line) is pasted too.
    for path in DOCS:
        for span in re.findall(r"`([^`\n]+)`", path.read_text(encoding="utf-8")):
            if " && " in span or " > " in span or " | " in span:
                assert "…" not in span, f"{path.name}: `{span}` has a literal … to paste"


def test_documented_image_tag_is_this_version() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    tags = re.findall(r"image: \S+/snapzen:(\S+)", text)
    assert tags and set(tags) == {__version__}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=80, seed=3, days=4, job_seconds=0.05)) as sb:
        yield sb


@pytest.mark.e2e
def test_runnable_documented_commands_run_against_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "snapzen.db"
    create_ledger(ledger, LEDGER_KEY)  # as `snapzen init` does
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(
        sandbox.env(),
        SNAPZEN_LEDGER__PATH=str(ledger),
        SNAPZEN_LEDGER__KEY=LEDGER_KEY,
        SNAPZEN_SECRETS_DIR=str(tmp_path / "no-secrets"),
        SNAPZEN_ZENDESK__JOB_POLL_SECONDS="0.05",
        SNAPZEN_LOG__LEVEL="warning",
        # What an operator fills in before `ledger report` prints an Art. 30 record.
        SNAPZEN_RECORD__CONTROLLER="Example Ltd",
        SNAPZEN_RECORD__CONTACT="dpo@example.com",
        SNAPZEN_RECORD__LAWFUL_BASIS="Art. 6(1)(b) contract",
        SNAPZEN_RECORD__SECURITY_MEASURES="TLS; ledger file 0600",
        # `snapzen` as installed in .venv/bin, but forked from a server that imported snapzen
        # once (tests/e2e/cli_server.py): each pasted line is still a process of its own.
        PATH=os.pathsep.join(
            [str(CliServer.get().bin_dir()), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
    )
    ran: list[str] = []

    def paste(line: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = paste("snapzen sync")
    assert first.returncode in (0, 3), first.stderr[-2000:]
    for path, body in shell_blocks():
        # A page is followed in order, in one directory (a later block verifies the
        # checkpoint an earlier one made); each page in a directory of its own.
        scratch = tmp_path / path.stem
        (scratch / "backups").mkdir(parents=True, exist_ok=True)
        variables = ""
        for line in (line.strip() for line in body.replace("\\\n", " ").splitlines()):
            if re.match(r"^[a-z_]+=\S", line):
                variables += line.split(" #", 1)[0] + "\n"  # `since=$(date …)` lines
                continue
            if not line.startswith("snapzen "):
                continue
            words = words_of(line)
            name, _ = command_path([w for w in words[1:] if w not in SHELL_OPERATORS][:20])
            runnable = runs_here(name, line) and not PLACEHOLDER.search(line.split(" #", 1)[0])
            if name == "ledger keygen" and (scratch / words[3]).exists():
                runnable = False  # "once": the reader made this key pair earlier on the page
            if not runnable:
                continue
            # /backups in the docs is the operator's; here a directory of the test's own.
            text = variables + line.replace("/backups/", "backups/")
            done = paste(text, scratch)
            assert done.returncode in (0, 3), f"{path.name}: {line!r}\n{done.stderr[-2000:]}"
            ran.append(name)
    # The auditor's journey and the operator's are both exercised.
    assert {"ledger list", "ledger report", "ledger verify", "ledger checkpoint"} <= set(ran)
    assert {"ledger backup", "backfill"} <= set(ran), ran


def runs_here(name: str, line: str) -> bool:
    """Whether a documented line of command ``name`` can run against the sandbox, read from
    the command tree: a command that records who ran it (it takes --actor) only as a dry run
    (`backfill`, `retention sweep`: the real ones are tested elsewhere), a read-only one
    always, unless it is a server; a group that only lists (`ledger requests`) is read-only."""
    command = typer.main.get_command(app)
    for word in name.split():
        command = command.commands[word]  # type: ignore[attr-defined]
    writes = any("--actor" in param.opts for param in command.params)
    return name not in SERVERS and (not writes or "--dry-run" in line)


def test_lines_that_run_are_read_from_the_tree() -> None:
    assert runs_here("ledger list", "snapzen ledger list") and runs_here("status", "snapzen status")
    assert not runs_here("sync", "snapzen sync") and not runs_here("ledger serve", "x")
    assert runs_here("backfill", "snapzen backfill --dry-run")
    assert not runs_here("backfill", "snapzen backfill --wait")


def test_backfill_help_examples_are_inside_snapengages_window() -> None:
    """Pasted as shown, the examples' dates (computed by the shell when pasted, never when the
    help was built) fall inside SnapEngage's 60 days, and each line parses as a backfill."""
    from datetime import UTC, date, datetime, timedelta

    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, ["backfill", "--help"], terminal_width=200).stdout
    variables, *lines = examples_of(shown)
    echoed = subprocess.run(
        ["bash", "-c", variables + '\necho "$since" "$until"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    days = [date.fromisoformat(d) for d in echoed.split()]
    today = datetime.now(UTC).date()
    assert len(days) == 2 and all(today - timedelta(days=60) <= d < today for d in days), days
    assert lines and all(command_path(words_of(line)[1:])[0] == "backfill" for line in lines)


def examples_of(help_text: str) -> list[str]:
    return [line.strip()[2:] for line in help_text.splitlines() if line.strip().startswith("$ ")]


def test_help_wraps_at_the_terminal_width_only() -> None:
    from typer.testing import CliRunner

    wide = CliRunner().invoke(app, ["backfill", "--help"], env={"COLUMNS": "200"}).stdout
    # One paragraph of the docstring, on one line at 200 columns (the source wraps at 100).
    assert any(
        "Days already finished are skipped." in line and "under the writer lock" in line
        for line in wide.splitlines()
    )
    narrow = CliRunner().invoke(app, ["backfill", "--help"], env={"COLUMNS": "80"}).stdout
    assert all(len(line.rstrip()) <= 80 for line in narrow.splitlines())
