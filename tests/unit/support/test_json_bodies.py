"""How the HTTP client reads JSON bodies: the standard library's values, NaN kept apart."""

from __future__ import annotations

import pytest
import requests
import responses

from snapzen.clients.http import HttpClient
from snapzen.support.errors import RetriesExhausted, ServerError
from snapzen.support.jsoncodec import NonFinite, dumps_text
from snapzen.support.settings import HttpSettings

URL = "https://api.example.test/api/v2/logs"


@responses.activate
def test_client_reads_big_ids_nan_and_refuses_junk() -> None:
    client = HttpClient(HttpSettings(max_attempts=1), service="snapengage", sleep=lambda s: None)
    body = '{"cases": [{"id": 123456789012345678901234567890, "d": NaN, "t": "\\ud800"}]}'
    responses.add(responses.GET, URL, body=body, content_type="application/json")
    value = client.get_json(URL)
    case = value["cases"][0]
    assert case["id"] == 123456789012345678901234567890  # exact, not a rounded float
    assert type(case["d"]) is NonFinite
    assert case["t"] == "\ud800"
    # A NaN read from a body is refused by the stored-case encoder (orjson would write null).
    with pytest.raises(TypeError):
        dumps_text(case)
    responses.add(responses.GET, URL, body=b"<html>oops</html>", content_type="application/json")
    with pytest.raises(RetriesExhausted, match="not JSON") as info:
        client.get_json(URL)
    assert isinstance(info.value.__cause__, ServerError)  # retried like a 5xx
    assert isinstance(info.value.__cause__.__cause__, requests.exceptions.JSONDecodeError)
