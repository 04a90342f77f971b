"""CSV exports neutralise formula-looking cells (OWASP); JSON keeps the values exactly."""

from __future__ import annotations

import csv
import io
import json

import pytest

from snapzen.ledger.evidence import audit
from snapzen.ledger.evidence.audit import neutralise

HOSTILE = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=x", "\r=x"]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_starts_are_prefixed(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["case-1", "DE", "", "'quoted", " =spaced", 42, -5, None])
def test_other_cells_are_unchanged(value: object) -> None:
    assert neutralise(value) == value


def test_csv_export_neutralises_and_json_does_not() -> None:
    rows = [{"case_id": value, "seq": -1} for value in HOSTILE]
    out = io.StringIO()
    audit.write_rows(iter(rows), out, "csv", ["case_id", "seq"])
    assert "\n'\r=x," in out.getvalue()  # a bare CR is not quoted by csv: checked as text
    read = list(csv.DictReader(io.StringIO(out.getvalue().replace("\r", ""), newline="")))
    assert [r["case_id"] for r in read] == ["'" + v.replace("\r", "") for v in HOSTILE]
    assert {r["seq"] for r in read} == {"-1"}  # numbers are not text a spreadsheet runs
    out = io.StringIO()
    audit.write_rows(iter(rows), out, "json", ["case_id", "seq"])
    assert [r["case_id"] for r in json.loads(out.getvalue())] == HOSTILE
