"""No module in snapzen/ over 600 lines (issue 15): past that size a module holds several
jobs and nobody reads it whole."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "snapzen"
LIMIT = 600


def test_no_module_over_the_limit() -> None:
    too_long = {
        str(path.relative_to(PACKAGE)): count
        for path in sorted(PACKAGE.rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert too_long == {}
