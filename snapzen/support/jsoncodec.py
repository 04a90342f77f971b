"""JSON encoding on the hot path: orjson, refusing what the standard library refuses.

Every case is stored as JSON text and every import batch is encoded: at 10,000 chats the
standard library's encoder took ~0.35 s of the pass's CPU; orjson does the same work about
4x faster. Decoding stays with the standard library (``json``): an orjson decoder needed its
own proof that it reads every text as ``json`` does, and a 100,000-chat backfill used the same
CPU without it (bench/RESULTS.md, v9).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

# Values orjson would turn into JSON on its own but the standard library refuses: refuse
# them too (TypeError), so callers keep detecting "not a plain JSON value". Subclasses of
# builtins are refused as well: that is how a NonFinite is kept from orjson.
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class NonFinite(float):
    """A NaN or infinity read from JSON text (``NaN``, ``Infinity``: not JSON, but ``json``
    reads them). A float like any other, except that ``dumps_text`` refuses it (orjson would
    silently write null), so such a value is stored by ``json`` as before: ``NaN``."""


class UnreadableJson(ValueError):
    """JSON text that no second attempt would read either: nested deeper than the decoder's
    recursion limit, or a number too long to convert. Its message says which."""


def loads_untrusted(decode: Callable[[], Any]) -> Any:
    """Run ``decode`` (a ``json.loads`` of an API's answer): the boundary for JSON text from
    outside. Malformed text raises ``json.JSONDecodeError`` as usual; text no attempt can
    read raises ``UnreadableJson`` (a ValueError too) instead of what the standard library
    raises for it: a RecursionError with a traceback as long as the nesting (100,000 ``[``
    in a row), or int()'s 4,300-digit ValueError. ``from None``: their chains, which are
    that long traceback, are never kept."""
    try:
        return decode()
    except RecursionError:
        raise UnreadableJson("JSON nested too deeply to read") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:  # a number over int()'s digit limit (the only other ValueError)
        raise UnreadableJson("JSON holding a number too long to read") from None


def parse_constant(name: str) -> NonFinite:
    """``json.loads(..., parse_constant=parse_constant)``: NaN/Infinity as ``NonFinite``."""
    return NonFinite(float(name))


def dumps_text(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` for plain JSON values, compact.

    Raises TypeError for what JSON cannot hold (as ``json`` does), for strings with lone
    surrogates (``json`` would let them through and UTF-8 storage would then refuse them) and
    for ``NonFinite`` values. A plain float NaN is written as null (orjson cannot refuse it):
    values decoded by ``snapzen.clients.http`` hold ``NonFinite`` instead."""
    return orjson.dumps(value, option=_STRICT).decode("utf-8")


def dumps_bytes(value: Any) -> bytes:
    """An HTTP body: UTF-8 JSON bytes; falls back to ``json`` (ASCII escapes) for what
    orjson refuses, so a body that encoded before still encodes (and one with a NaN is
    refused as before)."""
    try:
        return orjson.dumps(value, option=_STRICT)
    except TypeError:
        return json.dumps(value, allow_nan=False).encode("ascii")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (from a JSON "\\ud800" escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    return value
