"""Pathological JSON from either API is one clear error, never a traceback (issue 23, item 10).

``json`` raises RecursionError for text nested past the interpreter's recursion limit (the
issue's 100,000 levels ended a sync in a 116-line traceback) and a bare ValueError for a number
over int()'s digit limit. Both are read at one boundary (``snapzen.support.jsoncodec``) and
become a ProtocolError naming the endpoint: not retried (asking again brings the same text),
and ambiguous for the import POST (Zendesk may have queued the job).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner
from werkzeug.wrappers import Request, Response

from snapzen.cli import app
from snapzen.clients.http import HttpClient
from snapzen.support.errors import (
    AmbiguousWriteError,
    InvalidRecordError,
    ProtocolError,
    RetriesExhausted,
)
from snapzen.support.settings import HttpSettings
from tests import fakes
from tests.fakes import make_case, recent

DEEP = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = '{"cases": [], "n": ' + "7" * 5_000 + "}"
URL = "https://api.example.test/api/v2/logs"


def _raw(apis: fakes.SandboxApis, path: str, body: str) -> list[int]:
    """``path`` answers ``body`` (a crafted answer over the sandbox's); returns the list its
    calls are counted in."""
    served: list[int] = []

    def craft(request: Request) -> Response:
        served.append(1)
        return Response(body, 200, content_type="application/json")

    apis.answer(path, craft)
    return served


def _sync() -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["sync"])
    return result.exit_code, result.output, result.exception


def _one_clear_error(output: str, needle: str) -> str:
    assert "Traceback" not in output and "RecursionError" not in output
    [line] = [ln for ln in output.splitlines() if ln.startswith("snapzen: error:")]
    assert needle in line and "ProtocolError" in line
    return line


@pytest.mark.parametrize(
    ("body", "needle"),
    [(DEEP, "nested too deeply to read"), (LONG_NUMBER, "a number too long to read")],
)
def test_a_snapengage_page_no_decoder_reads_ends_the_sync_with_one_line(
    sync_env: Path, apis: fakes.SandboxApis, body: str, needle: str
) -> None:
    served = _raw(apis, f"/snapengage/api/v2/{fakes.ORG}/logs", body)
    code, output, exc = _sync()
    assert code == 1 and isinstance(exc, SystemExit)
    line = _one_clear_error(output, needle)
    assert "snapengage GET /snapengage/api/v2/" in line and "/logs?widgetId=w" in line
    assert fakes.SE_TOKEN not in output
    assert 1 <= len(served) <= 2  # one page per widget at most, none asked for twice
    assert apis.tickets_by_external_id() == {}


def test_a_zendesk_answer_nested_100000_deep_ends_the_sync_with_one_line(
    sync_env: Path, apis: fakes.SandboxApis
) -> None:
    served = _raw(apis, "/zendesk/api/v2/users/me", DEEP)
    apis.add_cases("w1", [make_case("c1", started=recent(200))])
    code, output, _ = _sync()
    assert code == 1
    line = _one_clear_error(output, "nested too deeply to read")
    assert "zendesk GET /zendesk/api/v2/users/me" in line
    assert len(served) == 1
    assert apis.tickets_by_external_id() == {}


def test_a_chat_nested_hundreds_deep_still_syncs(sync_env: Path, apis: fakes.SandboxApis) -> None:
    """Depth alone is no error: a case the decoder can read goes through as any other."""
    deep_case = make_case("deep", started=recent(200))
    deep_case["extra"] = "NEST"
    page = {"cases": [deep_case, make_case("good", started=recent(200))]}
    text = json.dumps({**page, "linkToNextSetOfResults": ""})
    _raw(
        apis,
        f"/snapengage/api/v2/{fakes.ORG}/logs",
        text.replace('"NEST"', "[" * 300 + "1" + "]" * 300),
    )
    code, output, _ = _sync()
    assert code == 0, output
    assert apis.tickets_by_external_id() == {"snapengage:deep": 1, "snapengage:good": 1}


@responses.activate
def test_an_unreadable_get_is_not_retried() -> None:
    client = HttpClient(HttpSettings(max_attempts=3), service="snapengage", sleep=lambda s: None)
    responses.add(responses.GET, URL, body=DEEP, content_type="application/json")
    with pytest.raises(ProtocolError, match="nested too deeply to read") as caught:
        client.get_json(URL)
    assert not isinstance(caught.value, RetriesExhausted)
    # Even printed in full (a bug elsewhere), the chain is short and holds no RecursionError.
    printed = "".join(traceback.format_exception(caught.value))
    assert "RecursionError" not in printed and printed.count("\n") < 80
    assert len(responses.calls) == 1


@responses.activate
def test_an_unreadable_answer_to_a_write_is_ambiguous() -> None:
    client = HttpClient(HttpSettings(max_attempts=3), service="zendesk", sleep=lambda s: None)
    responses.add(responses.POST, URL, body=DEEP, content_type="application/json")
    with pytest.raises(AmbiguousWriteError, match="not JSON"):
        client.request_json("POST", URL, idempotent=False, data=b"{}")
    assert len(responses.calls) == 1


@responses.activate
def test_an_unreadable_error_body_still_gives_the_status() -> None:
    client = HttpClient(HttpSettings(max_attempts=1), service="zendesk", sleep=lambda s: None)
    responses.add(responses.GET, URL, status=422, body=DEEP, content_type="application/json")
    with pytest.raises(InvalidRecordError, match=r"answered HTTP 422 \(invalid record\)$"):
        client.get_json(URL)
