"""The hash formats ledgers were written in before chain version 3, kept so every ledger ever
written stays verifiable (and so the schema-8 migration can give old rows their record).

- version 1 (``chain_version`` NULL): hash = SHA-256( prev_hash || "\\n" || canonical JSON of
  the row without ``hash`` ), the JSON with sorted keys, no spaces, UTF-8
  (``ensure_ascii=False``).
- version 2: hash = SHA-256( prev_hash || "\\n" || SQLite's ``json_object`` over
  ``V2_COLUMNS`` in that order ).

Both cover ``seq`` and ``prev_hash`` inside the hashed JSON. Since schema 8 that JSON is the
row's stored ``record`` (ledger.evidence.events_table), so verifying an old row is the same
SHA-256 as a new one, plus a check that the record's ``seq``/``prev_hash`` are the row's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

# Columns of `transfers` that version 1 hashes, in schema order (all but `hash`).
CHAINED_COLUMNS = (
    "seq",
    "event",
    "case_id",
    "widget_id",
    "subject_ref",
    "origin_country",
    "recipient",
    "destination_country",
    "legal_basis",
    "mechanism_ref",
    "consent_variable",
    "consent_value",
    "consent_source",
    "consent_observed_at",
    "data_categories",
    "redactions",
    "ticket_id",
    "transferred_at",
    "retention_until",
    "run_id",
    "actor",
    "details",
    "prev_hash",
)

# Version 2: SQLite's json_object over these columns, in this order.
V2_COLUMNS = (*CHAINED_COLUMNS[:-1], "chain_version", "prev_hash")
V2_BODY_SQL = "json_object(" + ", ".join(f"'{c}', {c}" for c in V2_COLUMNS) + ")"


# Version 1's canonical form is ``_json_text`` below, and it must never change. orjson writes
# the very same bytes, ~5x faster, for str, int, bool, None, and lists and str-keyed dicts of
# those (``plain_json``; property test in tests/unit/ledger/store/test_outbox_batching.py). It
# refuses ints beyond 64 bits and lone surrogates (JSONEncodeError), formats floats differently and
# encodes types json refuses (UUID, Enum, dates, dataclasses): all of those take ``json``.
_SCALARS = frozenset({str, int, bool, type(None)})
SORTED = orjson.OPT_SORT_KEYS


def plain_json(value: Any) -> bool:
    """True when ``value`` holds only str, int, bool and None, in lists and str-keyed dicts
    (exact types, no subclasses): the values orjson encodes exactly as ``json`` does (bar
    ints beyond 64 bits and lone surrogates, which orjson refuses). An explicit stack, not
    recursion: it runs once per ledger row and per pushed case."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        kind = type(current)
        if kind is dict:
            for key in current:
                if type(key) is not str:
                    return False
            items = current.values()
        elif kind is list:
            items = current
        else:
            if kind is str or kind is int or current is None or kind is bool:
                continue
            return False
        for item in items:
            kind = type(item)
            if kind is str or kind is int or item is None or kind is bool:
                continue
            if kind is dict or kind is list:
                push(item)
                continue
            return False
    return True


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(row: Mapping[str, Any]) -> str:
    """A version-1 row's hashed JSON (its record since schema 8)."""
    body = {column: row.get(column) for column in CHAINED_COLUMNS}
    fast = _orjson_scalars(body)
    return fast.decode("utf-8") if fast is not None else json_text(body)


def row_hash(row: Mapping[str, Any]) -> str:
    """The version-1 hash of ``row`` (its CHAINED_COLUMNS)."""
    digest = hashlib.sha256()
    digest.update(str(row["prev_hash"]).encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_json(row).encode("utf-8"))
    return digest.hexdigest()


def _orjson_scalars(body: dict[str, Any]) -> bytes | None:
    """``json_text(body)`` as UTF-8 via orjson, or None where it could differ."""
    if _SCALARS.issuperset(map(type, body.values())):
        try:
            return orjson.dumps(body, option=SORTED)
        except orjson.JSONEncodeError:
            pass  # an int beyond 64 bits or a lone surrogate: json decides
    return None
