"""The packages' dependencies point one way: cli -> commands -> sync -> {clients, ledger} -> policy
-> support (sandbox beside, for the demo, the CLI and tests only).

The CLI is thin: it parses arguments, calls one function in snapzen.commands and renders the
result. It imports only commands, support and the sandbox (its own `sandbox` group); it holds
no SQL, builds no API client (snapzen.commands.clients does, from settings) and writes no file
(exports, packs and checkpoints are written by commands, atomically and 0600).

Read from the source with ``ast`` (every import, lazy ones inside functions too), so a new import
against the layering fails here rather than in review. A package may import itself and anything
listed for it below; nothing else of snapzen's.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "snapzen"

# What each layer may import (besides itself). Storage (ledger) never reaches a client, and the
# engine (sync) sees the APIs only through the source/sink protocols its caller hands it.
ALLOWED: dict[str, set[str]] = {
    "support": set(),
    "policy": {"support"},
    "clients": {"policy", "support", "__init__"},
    "ledger": {"policy", "support"},
    "sync": {"ledger", "policy", "support"},
    "commands": {"sync", "clients", "ledger", "policy", "support"},
    "sandbox": {"support"},
    "cli": {"commands", "support", "sandbox", "__init__"},
    "demo": {"sandbox", "cli", "support"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, layer) for every import of a snapzen module in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "snapzen":
                names = [f"snapzen.{alias.name}" for alias in node.names]
            elif node.module.startswith("snapzen."):
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("snapzen.")]
        for name in names:
            target = name.split(".")[1]
            yield node.lineno, "__init__" if target == "__version__" else target


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        allowed = ALLOWED.get(layer)
        if allowed is None:
            found.append(f"{path.relative_to(PACKAGE.parent)}: unknown layer {layer!r}")
            continue
        for line, target in _imports(path):
            if target != layer and target not in allowed:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {layer} -> {target}")
    return found


def test_imports_follow_the_layers() -> None:
    assert _violations() == []


def test_at_most_twelve_modules_at_the_top() -> None:
    top = [p.name for p in PACKAGE.iterdir() if p.suffix == ".py"]
    assert len(top) <= 12, sorted(top)


def test_the_check_catches_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself: a ledger module importing a client is reported."""
    fake = tmp_path / "snapzen"
    (fake / "ledger").mkdir(parents=True)
    (fake / "ledger" / "bad.py").write_text(
        "def f():\n    from snapzen.clients import zendesk\n", encoding="utf-8"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert _violations() == ["snapzen/ledger/bad.py:2: ledger -> clients"]


CLI = PACKAGE / "cli"
# Storage modules the CLI never imports (commands open the ledger).
STORAGE_MODULES = {"sqlite3", "sqlite_utils"}
# How snapzen writes a file (atomically, 0600): what a command does, never the CLI.
FILE_WRITERS = {"snapzen.support.atomic"}
# What building an API client, or running SQL, looks like in the source.
CONSTRUCTION = re.compile(
    r"\b(?:\w+Client|\w+Deleter|\w+Eraser|HttpClient|SandboxConfig)\(|\.execute(?:many)?\("
    r"|\bopen_ledger\("
)


def _cli_violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root.parent.parent)
        for node in ast.walk(ast.parse(text)):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                if module.split(".")[0] in STORAGE_MODULES:
                    found.append(f"{name}:{node.lineno}: imports {module}")
            if (
                isinstance(node, ast.ImportFrom) and node.module
            ):  # `from snapzen.support import atomic`
                modules += [f"{node.module}.{alias.name}" for alias in node.names]
            for module in sorted(FILE_WRITERS.intersection(modules)):
                found.append(f"{name}:{node.lineno}: imports {module}")
        for number, line in enumerate(text.splitlines(), 1):
            if CONSTRUCTION.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_the_cli_runs_no_sql_builds_no_client_and_writes_no_file() -> None:
    assert _cli_violations(CLI) == []


def test_the_cli_check_catches_sql_a_client_and_a_file_writer(tmp_path: Path) -> None:
    cli = tmp_path / "snapzen" / "cli"
    cli.mkdir(parents=True)
    (cli / "bad.py").write_text(
        "import sqlite3\n\n\ndef f(db, s):\n    db.execute('SELECT 1')\n"
        "    return ZendeskClient(s.zendesk, HttpClient(s.http))\n"
        "from snapzen.support import atomic\nfrom snapzen.support.atomic import atomic_text\n",
        encoding="utf-8",
    )
    assert _cli_violations(cli) == [
        "snapzen/cli/bad.py:1: imports sqlite3",
        "snapzen/cli/bad.py:7: imports snapzen.support.atomic",
        "snapzen/cli/bad.py:8: imports snapzen.support.atomic",
        "snapzen/cli/bad.py:5: db.execute('SELECT 1')",
        "snapzen/cli/bad.py:6: return ZendeskClient(s.zendesk, HttpClient(s.http))",
    ]


COMMANDS = PACKAGE / "commands"
# SQL as it looks in the source: a statement run, a pragma, or a query's words.
SQL = re.compile(
    r"\.execute(?:many)?\(|\.query\(|\bPRAGMA\b|\bSELECT\b.+\bFROM\b|\bINSERT INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b|\bDELETE FROM\b"
)
# Modules of other areas that still ask the ledger by hand (issue 25, item 4): each leaves
# this list when its queries move into snapzen.ledger; the list may only shrink.
STILL_ASKING_BY_HAND = {
    "access_request.py",  # h-w-rights
    "backfill.py",  # h-engine
    "erase.py",  # h-w-rights
    "erase_request.py",  # h-w-rights
    "erasure_response.py",  # h-w-rights
    "request_desk.py",  # h-w-rights
}


def _sql_lines(root: Path) -> dict[str, list[str]]:
    """Per module of ``root``, its lines that run SQL."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        hits = [f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if SQL.search(line)]
        if hits:
            found[path.relative_to(root).as_posix()] = hits
    return found


def test_commands_ask_the_ledger_through_its_functions_not_sql() -> None:
    found = _sql_lines(COMMANDS)
    assert {name: lines for name, lines in found.items() if name not in STILL_ASKING_BY_HAND} == {}
    # A module that no longer runs SQL (or no longer exists) leaves the list.
    assert set(found) >= STILL_ASKING_BY_HAND, STILL_ASKING_BY_HAND - set(found)


def test_the_sql_check_catches_a_query_and_a_pragma(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "def f(db):\n    db.execute('SELECT 1')\n    x = 'PRAGMA table_info(cases)'\n"
        "    return 'SELECT case_id FROM cases'\n",
        encoding="utf-8",
    )
    (tmp_path / "good.py").write_text("def f(db):\n    return lookups.due(db)\n", encoding="utf-8")
    assert _sql_lines(tmp_path) == {
        "bad.py": [
            "2: db.execute('SELECT 1')",
            "3: x = 'PRAGMA table_info(cases)'",
            "4: return 'SELECT case_id FROM cases'",
        ]
    }
