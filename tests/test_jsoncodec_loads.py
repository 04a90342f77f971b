"""jsoncodec.loads and the HTTP body decoder: orjson's speed, json's values and errors.

The reference is what the client did before: ``json.loads(..., parse_constant=...)`` for
``jsoncodec.loads`` and ``Response.json(parse_constant=...)`` for ``snapzen.clients.http``.
Values are compared type-aware (int vs float vs bool, NonFinite vs float, the sign of -0.0,
key order) and failures by exception class and message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests
import responses
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from snapzen.clients import http
from snapzen.clients.http import HttpClient
from snapzen.support import jsoncodec
from snapzen.support.errors import RetriesExhausted, ServerError
from snapzen.support.jsoncodec import NonFinite
from snapzen.support.settings import HttpSettings

# ---------------------------------------------------------------- comparison


def canon(value: Any) -> Any:
    """A form that is equal only for values the same in every way the pipeline can see."""
    kind = type(value).__name__
    if isinstance(value, float):
        return (kind, "nan" if math.isnan(value) else value.hex())
    if isinstance(value, dict):
        return (kind, [(key, canon(item)) for key, item in value.items()])
    if isinstance(value, list):
        return (kind, [canon(item) for item in value])
    return (kind, value)


def outcome(decode: Callable[[], Any]) -> Any:
    try:
        return ("value", canon(decode()))
    except RecursionError:
        # Where the limit is hit (and so the message) depends on the caller's stack depth.
        return ("error", RecursionError)
    except Exception as exc:
        return ("error", type(exc), str(exc))


def reference(data: bytes | str) -> Any:
    return outcome(lambda: json.loads(data, parse_constant=jsoncodec.parse_constant))


def assert_same(data: bytes | str) -> None:
    assert outcome(lambda: jsoncodec.loads(data)) == reference(data)


def assert_same_text(text: str) -> None:
    """The text, and its bytes as a UTF-8 body (lone surrogates kept as json would read them)."""
    assert_same(text)
    assert_same(text.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- generated JSON-ish texts

WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "])
BIG = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19, 10**400]
INTEGERS = st.integers() | st.sampled_from(BIG) | st.integers(-(2**70), 2**70)
FLOATS = st.floats(allow_subnormal=True) | st.sampled_from(
    [-0.0, 0.0, 5e-324, 2.2250738585072011e-308, 1.7976931348623157e308, 1e16, 1e22, 0.1]
)
# Number tokens as a server might write them: long mantissas, huge exponents, -0, 1E400.
NUMBER_TOKENS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
)
CONSTANTS = st.sampled_from(["NaN", "Infinity", "-Infinity", "true", "false", "null"])
# Every code point, lone surrogates included (json.dumps escapes them as "\ud800").
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
KEYS = st.sampled_from(["a", "b", "id", "", "é"]) | TEXT


def leaf_token() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(json.dumps, INTEGERS),
        st.builds(json.dumps, FLOATS),  # nan/inf written as NaN/Infinity
        NUMBER_TOKENS,
        CONSTANTS,
        st.builds(json.dumps, TEXT),  # \uXXXX escapes, surrogates escaped
        st.builds(lambda s: json.dumps(s, ensure_ascii=False), TEXT),  # raw characters
    )


def _array(items: list[str], ws: str) -> str:
    return "[" + ws + ("," + ws).join(items) + ws + "]"


def _object(pairs: list[tuple[str, str]], ws: str) -> str:
    members = (f"{json.dumps(key)}{ws}:{ws}{item}" for key, item in pairs)
    return "{" + ws + ("," + ws).join(members) + ws + "}"


def tokens() -> st.SearchStrategy[str]:
    """JSON texts (and near-JSON: NaN, big numbers) with repeated keys and odd whitespace."""
    return st.recursive(
        leaf_token(),
        lambda children: st.one_of(
            st.builds(_array, st.lists(children, max_size=5), WHITESPACE),
            st.builds(
                _object,
                # Few distinct keys, so objects often repeat one.
                st.lists(st.tuples(KEYS, children), max_size=5),
                WHITESPACE,
            ),
        ),
        max_leaves=25,
    )


def documents() -> st.SearchStrategy[str]:
    return st.builds(lambda a, text, b: a + text + b, WHITESPACE, tokens(), WHITESPACE)


@hsettings(max_examples=1500)
@given(text=documents())
def test_json_ish_texts_decode_as_json_does(text: str) -> None:
    assert_same_text(text)


@hsettings(max_examples=300)
@given(text=documents(), cut=st.integers(min_value=0), junk=st.sampled_from(["", ",", "x", "]"]))
def test_damaged_texts_fail_or_decode_as_json_does(text: str, cut: int, junk: str) -> None:
    assert_same_text(text[: cut % (len(text) + 1)] + junk)


@hsettings(max_examples=300)
@given(
    value=st.recursive(
        st.none() | st.booleans() | INTEGERS | FLOATS | TEXT,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children),
        max_leaves=20,
    ),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
)
def test_dumped_values_decode_as_json_does(value: Any, ensure_ascii: bool, indent: int) -> None:
    assert_same_text(json.dumps(value, ensure_ascii=ensure_ascii, indent=indent))


# ---------------------------------------------------------------- raw input


@hsettings(max_examples=500)
@given(data=st.binary(max_size=40))
def test_arbitrary_bytes_decode_or_fail_as_json_does(data: bytes) -> None:
    assert_same(data)


JSONISH = st.characters(codec=None, exclude_categories=()) | st.sampled_from(
    [*'[]{}",:0123456789.eE+-\\/ \t\n\r', "true", "null", "NaN", "\ufeff", "\\u"]
)


@hsettings(max_examples=500)
@given(text=st.lists(JSONISH, max_size=30).map("".join))
def test_arbitrary_texts_decode_or_fail_as_json_does(text: str) -> None:
    assert_same_text(text)


# ---------------------------------------------------------------- known corner cases


@pytest.mark.parametrize(
    "text",
    [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        '{"id": 123456789012345678901234567890}',
        "1" * 400,
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "-0.0",
        "[0.1, 5e-324, 4.9e-324, 2.4703282292062328e-324]",
        "NaN",
        "[Infinity, -Infinity]",
        '"\\ud800"',
        '"\\udc00\\ud800"',
        '{"a": 1, "b": 2, "a": 3}',
        "\ufeff[1]",
        " \t\n\r[1] \n",
        "[1]\x0c",
        '"\\u0000"',
        "",
        "[1,]",
        "01",
        '{"id": "1234567890123456789012345"}',  # digits in a string: json reads it (same value)
    ],
)
def test_corner_cases(text: str) -> None:
    assert_same_text(text)


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf[1]", b"\xff", b'"\xed\xa0\x80"', b'"\xc0\x80"', b"\x00[1]", b"[1]\x00"],
)
def test_corner_case_bytes(data: bytes) -> None:
    assert_same(data)


def test_utf16_and_utf32_bytes_decode_as_json_does() -> None:
    for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"):
        assert_same('{"a": [1, "é"]}'.encode(codec))


@pytest.mark.parametrize("depth", [1, 254, 255, 256, 900, 990, 1000, 1024, 1025, 3000])
def test_deep_nesting_decodes_or_fails_as_json_does(depth: int) -> None:
    # json refuses with RecursionError near the interpreter's recursion limit, orjson only
    # beyond 1024: no depth where orjson's answer is taken while json would fail.
    def chain(decode: Callable[[bytes], Any], data: bytes) -> Any:
        """Depth and innermost value, walked without recursion (canon would hit the limit)."""
        try:
            value = decode(data)
        except RecursionError:
            return RecursionError
        levels = 0
        while isinstance(value, list | dict):
            levels += 1
            value = value["a"] if isinstance(value, dict) else (value[0] if value else None)
        return levels, value

    def before(data: bytes) -> Any:
        return json.loads(data, parse_constant=jsoncodec.parse_constant)

    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        assert chain(jsoncodec.loads, text.encode()) == chain(before, text.encode())


@pytest.mark.parametrize("data", [bytearray(b"[1, 2]"), memoryview(b"[1]")])
def test_other_input_types_follow_json(data: Any) -> None:
    assert outcome(lambda: jsoncodec.loads(data)) == reference(data)


def test_big_integers_are_floats_in_orjson() -> None:
    """Why texts with 19-digit runs go to json: what orjson (3.13) does with them."""
    assert orjson.loads(b"18446744073709551615") == 2**64 - 1  # still exact up to 2**64 - 1
    assert type(orjson.loads(b"18446744073709551616")) is float
    assert type(orjson.loads(b"-9223372036854775809")) is float
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b"1" * 400)
    value = jsoncodec.loads(b'{"id": 123456789012345678901234567890}')
    assert value == {"id": 123456789012345678901234567890}


def test_nan_is_nonfinite_and_plain_json_takes_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    value = jsoncodec.loads(b'{"d": NaN}')
    assert type(value["d"]) is NonFinite

    class NoJson:
        def loads(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the stdlib path was taken")

    monkeypatch.setattr(jsoncodec, "json", NoJson())
    text = b'{"cases": [{"id": "1", "n": 12, "x": -0.5e-3, "s": "\\u00e9"}]}'
    assert jsoncodec.loads(text) == {"cases": [{"id": "1", "n": 12, "x": -0.5e-3, "s": "é"}]}


# ---------------------------------------------------------------- the HTTP body decoder


def response(body: bytes, content_type: str | None) -> requests.Response:
    """A response as requests' HTTPAdapter builds it (encoding from the header)."""
    built = requests.Response()
    built.status_code = 200
    built._content = body
    if content_type is not None:
        built.headers["Content-Type"] = content_type
    built.encoding = requests.utils.get_encoding_from_headers(built.headers)
    return built


def assert_http_same(body: bytes, content_type: str | None) -> None:
    ours = outcome(lambda: http._decode_body(response(body, content_type)))
    before = outcome(
        lambda: response(body, content_type).json(parse_constant=jsoncodec.parse_constant)
    )
    assert ours == before


CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=UTF8",
        "text/plain",
        "text/html; charset=ISO-8859-1",
        "text/plain; charset=windows-1252",
        "application/json; charset=utf-8-sig",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "application/json; charset=no-such-codec",
        "application/octet-stream",
    ]
)


@hsettings(max_examples=400)
@given(text=documents(), content_type=CONTENT_TYPES, prefix=st.sampled_from([b"", b"\xef\xbb\xbf"]))
def test_http_bodies_decode_as_response_json_did(
    text: str, content_type: str | None, prefix: bytes
) -> None:
    assert_http_same(prefix + text.encode("utf-8", "surrogatepass"), content_type)


@hsettings(max_examples=300)
@given(body=st.binary(max_size=24), content_type=CONTENT_TYPES)
def test_http_raw_bodies_decode_or_fail_as_response_json_did(
    body: bytes, content_type: str | None
) -> None:
    assert_http_same(body, content_type)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
@pytest.mark.parametrize(
    "body",
    [b"[1]", b"1", b"{}", b"  1", b"\xef\xbb\xbf[1]", '["é"]'.encode(), '["é"]'.encode("latin-1")],
)
def test_http_short_and_non_utf8_bodies(body: bytes, content_type: str | None) -> None:
    assert_http_same(body, content_type)


def test_http_page_is_read_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    page = {"cases": [{"id": str(n), "transcripts": [{"text": "hé"}]} for n in range(3)]}
    body = json.dumps(page, ensure_ascii=False).encode()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stdlib path was taken")

    monkeypatch.setattr(requests.Response, "json", refuse)
    assert http._decode_body(response(body, "application/json; charset=utf-8")) == page
    assert http._decode_body(response(body, None)) == page


URL = "https://api.example.test/api/v2/logs"


@responses.activate
def test_client_reads_big_ids_nan_and_refuses_junk_as_before() -> None:
    client = HttpClient(HttpSettings(max_attempts=1), service="snapengage", sleep=lambda s: None)
    body = '{"cases": [{"id": 123456789012345678901234567890, "d": NaN, "t": "\\ud800"}]}'
    responses.add(responses.GET, URL, body=body, content_type="application/json")
    value = client.get_json(URL)
    case = value["cases"][0]
    assert case["id"] == 123456789012345678901234567890
    assert type(case["d"]) is NonFinite
    assert case["t"] == "\ud800"
    responses.add(responses.GET, URL, body=b"<html>oops</html>", content_type="application/json")
    with pytest.raises(RetriesExhausted, match="not JSON") as info:
        client.get_json(URL)
    assert isinstance(info.value.__cause__, ServerError)  # retried like a 5xx
    assert isinstance(info.value.__cause__.__cause__, requests.exceptions.JSONDecodeError)
