"""JSON encoding on the hot path: orjson, with the standard library for what it refuses.

Every case is stored as JSON text and every import batch is encoded: at 10,000 chats the
standard library's encoder took ~0.35 s of the pass's CPU (bench/RESULTS.md, v6); orjson
does the same work about 4x faster.

Decoding stays with ``json``: orjson reads integers beyond 64 bits as floats (a numeric case
id would lose digits) and gained only ~20 % on SnapEngage pages.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Values orjson would turn into JSON on its own but the standard library refuses: refuse
# them too (TypeError), so callers keep detecting "not a plain JSON value".
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps_text(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` for plain JSON values, compact.

    Raises TypeError for what JSON cannot hold (as ``json`` does) and for strings with lone
    surrogates (``json`` would let them through and UTF-8 storage would then refuse them).
    NaN and infinities are written as null (orjson cannot refuse them): values decoded by
    ``snapzen.http`` never hold them, it reads them as null already."""
    return orjson.dumps(value, option=_STRICT).decode("utf-8")


def dumps_bytes(value: Any) -> bytes:
    """An HTTP body: UTF-8 JSON bytes; falls back to ``json`` (ASCII escapes) for what
    orjson refuses, so a body that encoded before still encodes. NaN and infinities become
    null (ticket payloads hold no floats)."""
    try:
        return orjson.dumps(value, option=_STRICT)
    except TypeError:
        return json.dumps(value, allow_nan=False).encode("ascii")
