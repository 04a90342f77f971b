"""JSON on the hot path: orjson, with the standard library where orjson differs.

Every case is stored as JSON text and every import batch is encoded: at 10,000 chats the
standard library's encoder took ~0.35 s of the pass's CPU (bench/RESULTS.md, v6); orjson
does the same work about 4x faster.

Response bodies are decoded by ``loads``: orjson's value when it is certainly the value
``json.loads(..., parse_constant=parse_constant)`` gives, else ``json`` (same values, same
errors; ~20-25 % less CPU on a SnapEngage page). What orjson 3.13 reads differently (pinned in
tests/test_jsoncodec_loads.py):

- integers outside [-2**63, 2**64 - 1] come back as floats rounded to 53 bits (json: the exact
  int; a numeric case id would lose digits), and ones beyond the double range are refused;
- it refuses what json reads: NaN/Infinity (json: ``NonFinite`` here), lone surrogate escapes
  (``"\\ud800"``), numbers beyond the double range (``1e400``: json gives inf);
- it reads nesting json refuses with RecursionError (json stops near the interpreter's
  recursion limit, ~990 levels at the top of a stack; orjson at 1024).

So ``loads`` sends to json unread any text with a run of 19 or more ASCII digits (anywhere,
strings included: the shortest integer orjson turns into a float has 19), and hands json
every text orjson refuses (json then gives its own value or error) and every value orjson
read nested deeper than ~256 levels. On the rest orjson agrees with json: duplicate keys (the
last value, at the first key's position), -0 (int 0), -0.0, subnormals, underflow to 0.0,
float rounding, whitespace, escapes. (It also refuses a BOM, invalid UTF-8 and raw control
characters in strings: json's own rules then decide, and json's errors are the ones raised.)
"""

from __future__ import annotations

import gc
import json
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


# orjson reads integers outside [-2**63, 2**64 - 1] as floats; every such integer has at least
# 19 digits. A run of 19 ASCII digits anywhere (inside strings too) sends the text to json:
# digits map to "0", every other byte to "x", then one substring search.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x78 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19
_UNSURE = object()
_MAX_DEPTH = 256


def _via_orjson(data: bytes) -> Any:
    """orjson's value for ``data`` when it is certainly ``json``'s, else ``_UNSURE``."""
    if data.translate(_DIGITS_AS_ZEROS).find(_LONG_DIGIT_RUN) != -1:
        return _UNSURE
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, lone surrogates, 1e400, BOM, bad UTF-8, junk, ...
        return _UNSURE
    # json refuses nesting near the recursion limit (RecursionError), orjson only beyond 1024:
    # answer only values nested at most ~_MAX_DEPTH deep, well inside what json reads. Walked
    # a level at a time in C: gc.get_referents of a level's lists and dicts is the next level
    # (their items and values; strings and numbers refer to nothing), about 1/8 of the cost of
    # orjson.loads on a page.
    level = [value]
    for _ in range(_MAX_DEPTH + 1):
        level = gc.get_referents(*level)
        if not level:
            return value
    return _UNSURE


def loads(data: bytes | str, *, fallback: Callable[[], Any] | None = None) -> Any:
    """``json.loads(data, parse_constant=parse_constant)``: the same value (NaN/Infinity as
    ``NonFinite``, big integers exact) and the same exception, through orjson when its answer
    is certainly the same (module docstring).

    ``fallback`` replaces that ``json.loads`` call for the texts orjson does not answer, for a
    caller whose reference decoding is another one that agrees with it on every text orjson
    reads (``snapzen.clients.http``: ``Response.json`` on a body it reads as UTF-8)."""
    if type(data) is bytes:
        value = _via_orjson(data)
    elif type(data) is str:
        try:
            encoded = data.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: orjson refuses them too
            value = _UNSURE
        else:
            value = _via_orjson(encoded)
    else:  # bytearray and others: json's own rules (and its TypeError)
        value = _UNSURE
    if value is not _UNSURE:
        return value
    if fallback is not None:
        return fallback()
    return json.loads(data, parse_constant=parse_constant)
