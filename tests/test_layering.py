"""The packages' dependencies point one way: cli -> commands -> sync -> {clients, ledger} -> policy
-> support (sandbox beside, for the demo, the CLI and tests only).

Read from the source with ``ast`` (every import, lazy ones inside functions too), so a new import
against the layering fails here rather than in review. A package may import itself and anything
listed for it below; nothing else of snapzen's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "snapzen"

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
    "cli": {"commands", "sync", "clients", "ledger", "policy", "support", "sandbox", "__init__"},
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
