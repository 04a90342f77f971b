"""Issue 25 item 5: one vocabulary for the ledger. Every event is a member of
``snapzen.ledger.evidence.events.Event``, the chain refuses any other name, and no code outside
``snapzen/ledger/`` builds ledger rows or spells an event name as a string literal (it
appends rows a ledger function built, ``events.decision``, or calls a ledger function, and
names events as ``Event`` members)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from snapzen.ledger.evidence.chain import append_events
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.store.db import open_db, transaction

PACKAGE = Path(__file__).resolve().parents[4] / "snapzen"
LEDGER = PACKAGE / "ledger"
NAMES = frozenset(event.value for event in Event)
_NAME_RE = "|".join(sorted(NAMES, key=len, reverse=True))
# SQL that names an event by a literal: event = 'erased', t.event IN ('transfer', ...)
SQL_LITERAL = re.compile(
    rf"\bevent\s*(?:=|==|<>|!=|\bIN\b|\bNOT IN\b)\s*\(?\s*'(?:{_NAME_RE})'", re.IGNORECASE
)
ROW_SQL = re.compile(r"\b(?:INSERT|REPLACE)\s+INTO\s+(?:events|transfers)\b", re.IGNORECASE)
APPENDER = "append_events"


def _is_event_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES


def _mentions_event(node: ast.AST) -> bool:
    return "event" in ast.unparse(node).lower()


def violations(source: str, where: str) -> list[str]:
    """Lines of ``source`` that build a ledger row or spell an event name as a literal."""
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{where}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == APPENDER and (node.keywords or len(node.args) != 2):
                flag(node, f"{APPENDER} in its keyword form: append rows a ledger function built")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "event":
                    flag(node, "builds a ledger row (a dict with an 'event' key)")
                elif key is not None and _is_event_name(key) and _is_event_name_map(node):
                    flag(key, f"event name {key.value!r} as a literal key: use Event")  # type: ignore[attr-defined]
                    break
                del value
        elif isinstance(node, ast.Compare) and _mentions_event(node.left):
            for right in node.comparators:
                items = right.elts if isinstance(right, ast.Tuple | ast.List | ast.Set) else [right]
                if any(_is_event_name(item) for item in items):
                    flag(node, "compares an event with a literal name: use Event")
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and "EVENT" in t.id for t in node.targets
        ):
            value = node.value
            items = value.elts if isinstance(value, ast.Tuple | ast.List | ast.Set) else [value]
            if any(_is_event_name(item) for item in items):
                flag(node, "an event constant spelled as a literal: use Event")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_LITERAL.search(node.value):
                flag(node, "SQL names an event by a literal: bind an Event as a parameter")
            if ROW_SQL.search(node.value):
                flag(node, "SQL inserts a ledger row")
    return found


# Words that are both events and case statuses (snapzen.ledger.store.case_status.CaseStatus).
SHARED_WITH_STATUSES = frozenset({"withheld", "failed", "ignored"})


def _is_event_name_map(node: ast.Dict) -> bool:
    """A dict keyed by event names, e.g. a text per event: two or more of its keys are
    names only events have (a dict of case statuses is left alone)."""
    keys = [key for key in node.keys if key is not None and _is_event_name(key)]
    return sum(1 for key in keys if key.value not in SHARED_WITH_STATUSES) >= 2  # type: ignore[attr-defined]


def test_nothing_outside_the_ledger_builds_rows_or_spells_an_event_name() -> None:
    found = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if LEDGER not in path.parents
        for line in violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'append_events(conn, event=Event.RUN, case_id="c", recorded_at=stamp)',
        'chain.append_events(conn, **{"event": Event.RUN, "case_id": "c"})',
        "append_events(conn, **columns)",
        'row = {"event": Event.EXPIRED, "case_id": "c"}',
        'if row["event"] in ("erased", "expired"): pass',
        'if event == "transfer": pass',
        'DELETED_EVENTS = ("erased", "expired")',
        'TEXT = {"transfer": "sent", "erased": "deleted"}',
        "conn.execute(\"SELECT seq FROM events WHERE event = 'transfer'\")",
        "conn.execute(\"SELECT 1 FROM events e WHERE e.event IN ('expired', 'erased')\")",
        'conn.execute("INSERT INTO events (seq, record) VALUES (?, ?)", row)',
    ],
)
def test_the_check_catches_each_way_of_doing_it(source: str) -> None:
    assert violations(source, "example.py")


@pytest.mark.parametrize(
    "source",
    [
        'row = decisions.decision(Event.EXPIRED, "c", stamp)',
        'chain.append_events(conn, [decision(Event.EXPIRED, "c", stamp)])',
        "if row['event'] in (Event.ERASED, Event.EXPIRED): pass",
        'conn.execute("SELECT seq FROM events WHERE event = ?", (Event.TRANSFER,))',
        'label = {"failed": "x", "withheld": "y", "ignored": "z"}',  # case statuses
        'TEXT = {Event.TRANSFER: "sent"}',
    ],
)
def test_the_check_leaves_the_vocabulary_alone(source: str) -> None:
    assert violations(source, "example.py") == []


def test_the_chain_refuses_an_event_not_in_the_vocabulary(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ledger.db", create=True)
    row = {"case_id": "c1", "recorded_at": "2026-01-01T00:00:00Z"}
    with transaction(db) as conn:
        with pytest.raises(ValueError, match="unknown ledger event 'transfers'"):
            append_events(conn, [{**row, "event": Event.EXPIRED}, {**row, "event": "transfers"}])
        with pytest.raises(ValueError, match="unknown ledger event None"):
            append_events(conn, [row])  # an event must be named: no default
        stored = append_events(conn, [{**row, "event": Event.EXPIRED}])
    assert stored[0]["event"] == "expired" and stored[0]["seq"] == 1
