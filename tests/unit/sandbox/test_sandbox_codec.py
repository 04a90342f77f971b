"""The sandbox's JSON fast paths answer exactly what the standard library did.

``responses.encode`` must give the bytes of ``json.dumps(ensure_ascii=False, compact)`` (or the
very same str, for what orjson cannot write identically), ``responses.loads`` the value and
the errors of ``json.loads``; the heap freeze of a running Sandbox must be undone on stop.
"""

from __future__ import annotations

import enum
import gc
import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client

from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.data import generate
from snapzen.sandbox.responses import dumps, encode, is_plain, json_response, loads
from snapzen.sandbox.snapengage_api import SnapEngageApi


def _now() -> datetime:
    return datetime.now(UTC)


def _reference(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _as_bytes(body: bytes | str) -> bytes:
    return body if isinstance(body, bytes) else body.encode()


class _Colour(enum.Enum):
    RED = 1


class _Str(str):
    pass


class _Float(float):
    pass


AWKWARD: list[Any] = [
    {"lat": 1e-05, "big": 1e16, "small": 5e-324, "neg0": -0.0, "plain": 12.3456},
    [0.0001, 0.00001, 1.5e-7, 123456789012345678.0, 1e22, -1e-5],
    {"nan": math.nan, "inf": math.inf, "-inf": -math.inf},
    {"big": 2**64, "neg": -(2**63) - 1, "max": 2**63 - 1, "min": -(2**63), "u64": 2**64 - 1},
    {"s": '\x00\x01\x1f\x7f\u2028\u2029"\\/\b\f\n\r\t é 🦄 \ufeff'},
    {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
    {"sub": _Str("x"), "f": _Float(1.5)},
    {"t": (1, "a", (2.5, None)), "b": [True, False, None]},
    {"": {"": [[], {}]}},
]


@pytest.mark.parametrize("payload", AWKWARD)
def test_encode_gives_the_standard_librarys_bytes(payload: Any) -> None:
    assert _as_bytes(encode(payload)) == _reference(payload)


def test_what_json_cannot_write_still_fails_as_before() -> None:
    for payload in ({"u": uuid.UUID(int=1)}, {"e": _Colour.RED}, {"b": b"x"}):
        with pytest.raises(TypeError):
            dumps(payload)
        with pytest.raises(TypeError):
            encode(payload)
    # A lone surrogate has no UTF-8 form: it is sent as its JSON escape, which reads back.
    assert encode({"s": "\ud800"}) == dumps({"s": "\ud800"}) == '{"s":"\\ud800"}'
    assert json.loads(json_response({"s": "\ud800"}).get_data()) == {"s": "\ud800"}


def test_is_plain_only_for_what_orjson_writes_identically() -> None:
    assert is_plain({"a": [1, "b", None, True, 12.5, (1, 2)]})
    assert not is_plain({"a": [1e-05]})
    assert not is_plain([math.nan])
    assert not is_plain({"u": uuid.UUID(int=1)})
    assert not is_plain({"f": _Float(1.5)})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_encode_matches_json_dumps(value: Any) -> None:
    body = encode(value)
    if isinstance(body, bytes):
        assert body == _reference(value)
    else:
        assert body == dumps(value)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _old_loads(body: bytes) -> Any:
    return json.loads(body.decode(errors="replace") or "null")


@given(json_values)
def test_loads_matches_json_loads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        body = text.encode("utf-8", errors="surrogatepass")
        try:
            expected = _old_loads(body)
        except ValueError:
            with pytest.raises(ValueError):
                loads(body)
            continue
        assert _same(loads(body), expected)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  ",
        b"null",
        b"NaN",
        b"[Infinity, -Infinity, 1e400, -2e308, 1e-400]",
        b"123456789012345678901234567890",
        b"[-9223372036854775809, 9223372036854775808, 18446744073709551616]",
        b"[999999999999999999, -999999999999999999, 1.0000000000000000001]",
        b'"\\ud800 lone \\udc00"',
        b'{"a": 1, "b": 2, "a": 3}',
        b"\xef\xbb\xbf[1]",  # BOM
        b'"\xff\xfe invalid utf-8"',
        b'"\xed\xa0\x80 encoded surrogate"',
        b"[1,]",
        b"{'single': 1}",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_loads_awkward_bodies_as_json_does(body: bytes) -> None:
    try:
        expected = _old_loads(body)
    except (ValueError, RecursionError) as exc:
        with pytest.raises(type(exc)):
            loads(body)
        return
    assert _same(loads(body), expected)


def test_pages_skip_the_check_only_for_a_plain_data_set() -> None:
    cfg = SandboxConfig(chats=30, long_transcripts=0)
    dataset = generate(cfg, _now())
    assert SnapEngageApi(cfg, dataset)._plain
    dataset.cases[0]["latitude"] = 1e-05  # not what the generator makes; json writes 1e-05
    assert not SnapEngageApi(cfg, dataset)._plain


def test_pages_are_the_standard_librarys_bytes() -> None:
    cfg = SandboxConfig(chats=250, widgets=2, days=2, long_transcripts=2)
    app = SandboxApp(cfg, generate(cfg, _now()))
    client = Client(app)
    headers = {"Authorization": cfg.snapengage_token}
    day = _now().date().isoformat()
    url = f"/snapengage/api/v2/{cfg.org_id}/logs?start=2000-01-01&end={day}"
    seen = 0
    for widget in app.dataset.widget_ids:
        next_url: str | None = f"{url}&widgetId={widget}"
        while next_url:
            response = client.get(next_url, headers=headers)
            body = response.get_data()
            payload = json.loads(body)
            assert body == _reference(payload)
            seen += len(payload["cases"])
            link = payload["linkToNextSetOfResults"]
            next_url = link.split("localhost", 1)[1] if link else None
    assert seen == len(app.dataset.cases)


def test_imported_values_come_back_as_json_would_write_them() -> None:
    cfg = SandboxConfig(chats=0, job_seconds=0.0)
    app = SandboxApp(cfg, generate(cfg, _now()))
    client = Client(app)
    auth = (f"{cfg.zendesk_email}/token", cfg.zendesk_token)
    body = (
        b'{"tickets": [{"comments": [{"body": "hi"}], "external_id": "x1",'
        b' "custom": [NaN, 1e-05, 123456789012345678901234567890, 1E400, "\\ud83e\\udd84"]}]}'
    )
    response = client.post(
        "/zendesk/api/v2/imports/tickets/create_many.json",
        data=body,
        headers={"Content-Type": "application/json"},
        auth=auth,
    )
    assert response.status_code == 200
    shown = client.get("/zendesk/api/v2/tickets.json?external_id=x1", auth=auth).get_data()
    assert b'"custom":[NaN,1e-05,123456789012345678901234567890,Infinity,"\xf0\x9f\xa6\x84"]' in (
        shown
    )
    ticket = json.loads(shown)["tickets"][0]
    assert _reference({"tickets": [ticket]})[:-1] in shown


def test_a_running_sandbox_freezes_the_heap_until_the_last_one_stops() -> None:
    if gc.get_freeze_count():
        pytest.skip("the test process froze objects itself")
    outer = Sandbox(SandboxConfig(chats=5))
    try:
        assert gc.get_freeze_count() > 0
        with Sandbox(SandboxConfig(chats=5)):
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the outer one still runs
    finally:
        outer.stop()
    assert gc.get_freeze_count() == 0
    outer.stop()  # idempotent: no second thaw
    assert gc.get_freeze_count() == 0
