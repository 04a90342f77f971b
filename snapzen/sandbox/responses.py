"""Response helpers shared by both fake APIs."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response


def dumps(payload: Any) -> str:
    # ensure_ascii=False: real APIs send UTF-8, and clients must cope with raw non-ASCII bytes.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        dumps(payload),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


def error(status: int, error_name: str, description: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error_name}
    if description is not None:
        body["description"] = description
    return json_response(body, status)
