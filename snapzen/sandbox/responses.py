"""Response helpers shared by both fake APIs.

Bodies are what ``json.dumps(payload, ensure_ascii=False, separators=(",", ":"))`` writes, byte
for byte. orjson writes the same bytes several times faster for plain JSON values, so it is used
whenever that is known to hold (see ``is_plain``); anything else goes through ``json`` as before.
At 10,000 chats the standard library's encoder was about half of the emulator's CPU, taken from
snapzen on the benchmark's shared two cores.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson
from werkzeug.wrappers import Response

# orjson hands these to ``default`` (absent here), i.e. raises TypeError, so ``json`` decides:
# dataclasses, date/time values and subclasses of builtins (str, int, float, dict, list ...).
# It also raises for integers beyond 64 bits, lone surrogates and dict keys that are not str.
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# An integer token of 19 or more digits may lie beyond 64 bits, which orjson reads as a float.
# Found by mapping digits to "0" and the rest to " " (a regex took longer than the parse).
_DIGIT_MAP = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def dumps(payload: Any) -> str:
    # ensure_ascii=False: real APIs send UTF-8, and clients must cope with raw non-ASCII bytes.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a chat's broken emoji) has no UTF-8 form: an API sends it as the
        # JSON escape \ud800, which is what ensure_ascii writes.
        return json.dumps(payload, separators=(",", ":"))
    return text


def is_plain(value: Any) -> bool:
    """True when orjson would write ``value`` exactly as ``dumps`` does (or refuse it).

    Strings and 64-bit integers are written the same (checked for every code point); what
    differs is floats (``1e-05`` vs ``0.00001``, NaN as null) and types orjson writes but
    ``json`` refuses (UUID, Enum). So: only dicts, lists, tuples, str, int, bool, None, and
    floats whose orjson text is their ``repr``.
    """
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            extend(item.values())  # keys: orjson refuses any but str
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is not float or orjson.dumps(item) != float.__repr__(item).encode():
            return False
    return True


def encode(payload: Any, *, plain: bool = False) -> bytes | str:
    """``dumps(payload)``: as UTF-8 bytes from orjson when that is the same text, else the str.

    ``plain=True``: the caller has already established ``is_plain(payload)``."""
    if plain or is_plain(payload):
        try:
            return orjson.dumps(payload, option=_STRICT)
        except TypeError:
            pass
    return dumps(payload)


def loads(body: bytes) -> Any:
    """``json.loads(body.decode(errors="replace") or "null")``, with orjson where it agrees.

    orjson refuses what ``json`` reads leniently (NaN, Infinity, 1e400, lone surrogate escapes,
    invalid UTF-8, deep nesting): those go to ``json``, which decides as before. The one
    silent difference, integers beyond 64 bits read as floats, is avoided by leaving any body
    with a 19-digit run to ``json``. Raises ValueError (or RecursionError) like ``json``."""
    if body and _LONG_DIGITS not in body.translate(_DIGIT_MAP):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body.decode(errors="replace") or "null")


def json_response(
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    plain: bool = False,
) -> Response:
    return Response(
        encode(payload, plain=plain),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


def error(
    status: int, error_name: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": error_name, "description": description}, status, headers)


def not_found() -> Response:
    return error(404, "RecordNotFound", "Not found")


def shown_or_404(key: str, value: Any) -> Response:
    """``{key: value}``, or Zendesk's 404 when ``value`` is None (no such record)."""
    return not_found() if value is None else json_response({key: value})


def listing(key: str, rows: list[Any], count: int | None = None, **pages: str | None) -> Response:
    """One page of a Zendesk list: ``{key: rows, next_page, previous_page, count}``."""
    body = {key: rows, "next_page": None, "previous_page": None, **pages}
    return json_response({**body, "count": len(rows) if count is None else count})


def encode_cursor(position: list[Any]) -> str:
    """An opaque paging cursor for ``position`` (JSON values), as both services hand out."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(text: str, *types: type) -> tuple[Any, ...] | None:
    """The position ``encode_cursor`` wrote, each value converted to ``types``; None for
    anything else (a 400 to the client)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(values, list) or len(values) != len(types):
            return None
        return tuple(kind(value) for kind, value in zip(types, values, strict=True))
    except (ValueError, TypeError, binascii.Error):
        return None
