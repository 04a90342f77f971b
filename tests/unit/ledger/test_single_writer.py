"""Only ``snapzen/ledger/`` writes the ledger's tables (cases, runs, events, cursors, backfill
windows, ...: every table of a fresh ledger).

Every status change is a named function there (``snapzen.ledger.store.outbox`` for the pass,
``snapzen.ledger.store.transitions`` for people's commands, ``snapzen.ledger.store.runs`` for
run rows), so the chained decision that explains a change is written in the same transaction, and
``ledger verify`` can trust the working tables. Read from the source with ``ast``: every
string literal (f-strings too, their holes read as ``?``) and every sqlite_utils table write
(``db["cases"].insert(...)``, ``db.table("runs").update(...)``) outside ``snapzen/ledger/``.
Docstrings are prose and are skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "snapzen"
OWNER = PACKAGE / "ledger"
# Every table of a fresh ledger (test_every_ledger_table_is_checked), and transfers: the table
# before schema 9. Listing only cases, runs and events once let `snapzen backfill` write
# backfill_windows from commands/ unseen.
TABLES = (
    "cases", "runs", "events", "transfers", "state", "backfill_windows", "erased_subjects",
    "ledger_meta", "case_flags", "period_keys", "subject_periods", "legacy_refs",
)  # fmt: skip

_NAME = r"""[\s"'`\[]*(?:main\s*\.\s*)?["'`\[]?(?P<table>""" + "|".join(TABLES) + r""")\b"""
WRITE_SQL = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM"
    r"|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE)" + _NAME,
    re.IGNORECASE,
)
# Text that looks like a write but is data, never executed; each must still be found (no rot).
NOT_SQL = {
    # a hostile chat line the sandbox's SnapEngage serves, to prove payloads are never run as SQL
    "snapzen/sandbox/data.py: DROP TABLE cases",
}
# sqlite_utils.Table methods that change rows.
TABLE_WRITES = frozenset(
    {"insert", "insert_all", "upsert", "upsert_all", "update", "delete", "delete_where", "drop"}
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "?" for part in node.values
        )
    return None


def _table_name(node: ast.AST) -> str | None:
    """``db["cases"]`` or ``db.table("cases")``: the table named, else None."""
    if isinstance(node, ast.Subscript):
        key = node.slice
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "table"
        and node.args
    ):
        key = node.args[0]
    else:
        return None
    name = _text(key)
    return name if name in TABLES else None


def writes(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """(line, what) for each write to a ledger table (``TABLES``) in ``source``."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree)
    inside_fstring = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inside_fstring:
            continue
        text = _text(node)
        if text is not None:
            for match in WRITE_SQL.finditer(text):
                yield node.lineno, " ".join(match.group(0).split())
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in TABLE_WRITES
        ):
            table = _table_name(node.func.value)
            if table is not None:
                yield node.lineno, f"{table}.{node.func.attr}()"


def _outside_ledger() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if OWNER not in path.parents:
            yield path


def test_only_the_ledger_package_writes_its_tables() -> None:
    found: dict[str, str] = {}  # file:line: write -> file: write
    for path in _outside_ledger():
        name = path.relative_to(PACKAGE.parent)
        for line, what in writes(path.read_text(encoding="utf-8"), str(path)):
            found[f"{name}:{line}: {what}"] = f"{name}: {what}"
    assert set(found.values()) >= NOT_SQL, "a NOT_SQL entry is gone: remove it from the list"
    bad = [where for where, what in found.items() if what not in NOT_SQL]
    assert not bad, "write through a function in snapzen/ledger/ instead:\n" + "\n".join(bad)


def test_the_check_reads_the_whole_package() -> None:
    # A moved package or an empty glob would make the test above pass on nothing.
    paths = list(_outside_ledger())
    assert len(paths) > 50
    assert {p.parent.name for p in paths} >= {"commands", "cli", "sync", "clients", "sandbox"}


def test_self_test_catches_each_kind_of_write() -> None:
    source = '''
"""A docstring may say: UPDATE cases SET nothing (prose, not SQL)."""
def dismiss(conn, db, case_id, table):
    conn.execute("UPDATE cases SET status = 'ignored' WHERE case_id = ?", (case_id,))
    conn.execute(
        """insert  or replace into
           runs (run_id) VALUES (?)""", ("x",))
    conn.execute(f"DELETE FROM {table}")  # not a named table: not knowable here
    conn.execute(f"DELETE FROM events WHERE seq > {case_id}")
    conn.execute('UPDATE "cases" SET raw = NULL')
    db["runs"].insert({"run_id": "x"})
    db.table("events").delete_where("seq > 1")
    conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,))
    conn.execute("UPDATE case_flags SET resolved_at = ?", ("now",))
    db["cases"].count
    conn.execute("INSERT INTO backfill_windows (widget_id, day) VALUES (?, ?)", ("w", "d"))
    db["state"].upsert({"widget_id": "w"}, pk="widget_id")
    conn.execute("UPDATE cases_archive SET status = 'x'")  # not a ledger table
'''
    assert sorted(writes(source)) == [
        (4, "UPDATE cases"),
        (6, "insert or replace into runs"),
        (9, "DELETE FROM events"),
        (10, 'UPDATE "cases'),
        (11, "runs.insert()"),
        (12, "events.delete_where()"),
        (14, "UPDATE case_flags"),
        (16, "INSERT INTO backfill_windows"),
        (17, "state.upsert()"),
    ]


def test_every_ledger_table_is_checked(tmp_path: Path) -> None:
    # A table added to the schema but not to TABLES could be written from anywhere unseen.
    from snapzen.ledger.store.db import open_db

    db = open_db(tmp_path / "fresh.db", create=True)
    try:
        names = {
            str(row[0])
            for row in db.conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        db.conn.close()
    assert names >= {"cases", "events", "backfill_windows"}  # the schema was read
    assert names <= set(TABLES), f"add {sorted(names - set(TABLES))} to TABLES"


def test_the_ledger_package_itself_is_where_the_writes_are() -> None:
    # The pattern must match the real SQL, or the first test proves nothing.
    owned = [
        what
        for path in sorted(OWNER.rglob("*.py"))
        for _, what in writes(path.read_text(encoding="utf-8"), str(path))
    ]
    assert any(w.startswith("UPDATE cases") for w in owned)
    assert any(w.startswith("INSERT INTO cases") for w in owned)
    assert any(w.startswith("runs.insert") for w in owned)  # sqlite-utils
    assert any(w.startswith("INSERT INTO events") for w in owned)
    assert any(w.startswith("backfill_windows.upsert_all") for w in owned)  # sqlite-utils
