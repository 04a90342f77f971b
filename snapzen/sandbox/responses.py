"""What both fake APIs read and answer with: request bodies and arguments, JSON bodies, errors,
Zendesk's list pages and paging cursors.

Bodies are written by orjson (at 10,000 chats the standard library's encoder was about half of
the emulator's CPU, taken from snapzen on the benchmark's shared two cores); what orjson cannot
write (a lone surrogate, an integer beyond 64 bits) goes through ``json``. Request bodies are read
as strictly as a real API reads them: NaN, Infinity, invalid UTF-8 and other encodings
(UTF-16, UTF-32, a byte order mark) are not JSON (a 400).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson
from werkzeug.wrappers import Request, Response

JsonDict = dict[str, Any]
MAX_BATCH = 100  # Zendesk's ids per request and tickets per create_many


def encode(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:
        pass
    # ensure_ascii=False: real APIs send UTF-8, and clients must cope with raw non-ASCII bytes.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a chat's broken emoji) has no UTF-8 form: an API sends it as the
        # JSON escape \ud800, which is what ensure_ascii writes.
        return json.dumps(payload, separators=(",", ":")).encode("ascii")


# orjson reads an integer beyond 64 bits as a float; a run of 19 digits may be one, so such a
# body goes to ``json``, which keeps every digit (digits mapped to "0", the rest to " ").
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def loads(body: bytes) -> Any:
    """A request body's value; ValueError when it is not JSON. What orjson refuses (a lone
    surrogate escape, which is valid JSON; nesting past its limit) ``json`` decides."""
    if b"0" * 19 not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    # Decoded as UTF-8 first: json.loads would take UTF-16 or UTF-32 bytes (or a BOM) that a
    # real API refuses (JSON between systems is UTF-8, RFC 8259).
    return json.loads(body.decode("utf-8"), parse_constant=_not_json)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encode(payload), status, headers, content_type="application/json; charset=utf-8"
    )


class ApiError(Exception):
    """An error answer: ``status`` with ``body`` (Zendesk's is ``{"error", "description"}``)."""

    def __init__(self, status: int, body: JsonDict, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.response = json_response(body, status, headers)


def error(status: int, name: str, description: str) -> ApiError:
    return ApiError(status, {"error": name, "description": description})


def invalid(description: str) -> ApiError:
    return error(400, "InvalidValue", description)


def not_found() -> ApiError:
    return error(404, "RecordNotFound", "Not found")


def record_invalid(problem: str) -> ApiError:
    details = {"base": [{"description": problem, "error": "InvalidValue"}]}
    body = {"error": "RecordInvalid", "description": "Record validation errors"}
    return ApiError(422, {**body, "details": details})


def body_value(request: Request, key: str, kind: type) -> Any:
    """The request's ``{key: value}`` value, of ``kind``; a 400 for anything else."""
    try:
        value = loads(request.get_data())[key]
        if isinstance(value, kind):
            return value
    except (ValueError, TypeError, KeyError):
        pass
    raise error(400, "InvalidJSON", f'body must be {{"{key}": {kind.__name__}}}')


def ids_arg(request: Request) -> list[int]:
    try:
        ids = [int(part) for part in request.args.get("ids", "").split(",") if part.strip()]
    except ValueError:
        raise invalid("ids must be a comma-separated list of integers") from None
    if not ids:
        raise invalid("ids is required")
    if len(ids) > MAX_BATCH:
        raise error(400, "TooManyValues", f"at most {MAX_BATCH} ids per request, got {len(ids)}")
    return ids


def int_arg(request: Request, name: str, default: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        value = 0
    if value < 1:
        raise invalid(f"{name} must be a positive integer")
    return value


def listing(key: str, rows: list[Any], count: int | None = None, **pages: str | None) -> JsonDict:
    """One page of a Zendesk list: ``{key: rows, next_page, previous_page, count}``."""
    body = {key: rows, "next_page": None, "previous_page": None, **pages}
    return {**body, "count": len(rows) if count is None else count}


def encode_cursor(position: list[Any]) -> str:
    """An opaque paging cursor for ``position`` (JSON values), as both services hand out."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(text: str, *types: type) -> tuple[Any, ...]:
    """The position ``encode_cursor`` wrote, each value converted to ``types``; ValueError for
    anything else (a 400 to the client)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if isinstance(values, list) and len(values) == len(types):
            return tuple(kind(value) for kind, value in zip(types, values, strict=True))
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValueError(f"not a cursor this API gave: {text!r}")
