"""CSV cells that a spreadsheet will not run as formulas (the OWASP CSV-injection rule).

Ledger rows carry text that came from outside (case ids, consent values, error details): a
cell such as ``=HYPERLINK(...)`` or ``+cmd|' /C calc'!A0`` would be evaluated when an auditor
opens the export in a spreadsheet application. A text cell starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return is prefixed with ``'`` (shown as text, the value otherwise
intact); numbers are left alone, and JSON outputs are never touched.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` safe to put in a CSV cell."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: neutralise(value) for key, value in row.items()}
