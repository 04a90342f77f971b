"""The sandbox's JSON: what it writes reads back as the value it meant (lone surrogates and big
integers included), and it reads request bodies as strictly as a real API (NaN, Infinity and
invalid UTF-8 are not JSON) without losing a digit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client

from snapzen.sandbox import SandboxConfig
from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.data import generate
from snapzen.sandbox.responses import encode, loads


def _now() -> datetime:
    return datetime.now(UTC)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types (floats by their repr)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_what_is_written_reads_back_as_the_same_value(value: Any) -> None:
    body = encode(value)
    assert _same(json.loads(body), value)
    assert _same(loads(body), value)


@given(json_values)
def test_request_bodies_read_as_json_reads_them(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        body = text.encode("utf-8", errors="surrogatepass")
        try:
            expected = json.loads(body)
        except ValueError:  # a lone surrogate written raw: not UTF-8
            with pytest.raises(ValueError):
                loads(body)
            continue
        assert _same(loads(body), expected)


def test_a_lone_surrogate_is_sent_as_its_escape_and_big_integers_keep_every_digit() -> None:
    assert encode({"s": "\ud800"}) == b'{"s":"\\ud800"}'
    assert loads(b'"\\ud800 lone \\udc00"') == "\ud800 lone \udc00"
    big = b"[123456789012345678901234567890, -9223372036854775809, 18446744073709551616]"
    assert loads(big) == [123456789012345678901234567890, -(2**63) - 1, 2**64]
    assert encode(loads(big)) == big.replace(b" ", b"")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"NaN",
        b"[Infinity]",
        b"[-Infinity]",
        b'"\xff\xfe invalid utf-8"',
        b"[1,]",
        b"{'a': 1}",
        # JSON between systems is UTF-8 (RFC 8259): not UTF-16 or UTF-32, nor a byte order mark.
        '{"ticket": {"subject": "é"}}'.encode("utf-16"),
        '{"ticket": {"subject": "é"}}'.encode("utf-16-le"),
        '{"ticket": {"subject": "é"}}'.encode("utf-32"),
        '{"ticket": {"subject": "é"}}'.encode("utf-8-sig"),
    ],
)
def test_what_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads(body)


def test_pages_carry_every_case_as_generated() -> None:
    cfg = SandboxConfig(chats=250, widgets=2, days=2, long_transcripts=2)
    app = SandboxApp(cfg, generate(cfg, _now()))
    client = Client(app)
    headers = {"Authorization": cfg.snapengage_token}
    day = _now().date().isoformat()
    url = f"/snapengage/api/v2/{cfg.org_id}/logs?start=2000-01-01&end={day}"
    seen = []
    for widget in app.dataset.widget_ids:
        next_url: str | None = f"{url}&widgetId={widget}"
        while next_url:
            payload = json.loads(client.get(next_url, headers=headers).get_data())
            seen += payload["cases"]
            link = payload["linkToNextSetOfResults"]
            next_url = link.split("localhost", 1)[1] if link else None
    assert sorted(seen, key=lambda c: c["id"]) == sorted(app.dataset.cases, key=lambda c: c["id"])


def test_imported_values_come_back_and_a_body_that_is_not_json_is_refused() -> None:
    cfg = SandboxConfig(chats=0, job_seconds=0.0)
    client = Client(SandboxApp(cfg, generate(cfg, _now())))
    auth = (f"{cfg.zendesk_email}/token", cfg.zendesk_token)
    url = "/zendesk/api/v2/imports/tickets/create_many.json"
    body = (
        b'{"tickets": [{"comments": [{"body": "hi"}], "external_id": "x1",'
        b' "custom": [1e-05, 123456789012345678901234567890, "\\ud83e\\udd84", "\\ud800"]}]}'
    )
    assert client.post(url, data=body, auth=auth).status_code == 200
    shown = client.get("/zendesk/api/v2/tickets.json?external_id=x1", auth=auth).get_data()
    custom = json.loads(shown)["tickets"][0]["custom"]
    assert custom == [1e-05, 123456789012345678901234567890, "🦄", "\ud800"]
    assert not math.isnan(custom[0])
    for not_json in (b'{"tickets": [{"custom": NaN}]}', b'{"tickets": [{"n": Infinity}]}'):
        refused = client.post(url, data=not_json, auth=auth)
        assert refused.status_code == 400 and refused.json["error"] == "InvalidJSON"


def test_a_comment_with_a_lone_surrogate_is_imported_and_reads_back() -> None:
    """A lone surrogate escape is valid JSON (a chat's broken emoji): the comment size check
    must not choke on it, whether the ticket comes alone or by a job (which would otherwise
    break every later request, as jobs run before each one)."""
    cfg = SandboxConfig(chats=0, job_seconds=0.0)
    client = Client(SandboxApp(cfg, generate(cfg, _now())))
    auth = (f"{cfg.zendesk_email}/token", cfg.zendesk_token)
    api = "/zendesk/api/v2"
    one = b'{"ticket": {"external_id": "s1", "comments": [{"body": "a\\ud800b"}]}}'
    created = client.post(f"{api}/imports/tickets.json", data=one, auth=auth)
    assert created.status_code == 201, created.get_data()
    many = b'{"tickets": [{"external_id": "s2", "comments": [{"body": "\\udfff"}]}]}'
    assert (
        client.post(f"{api}/imports/tickets/create_many.json", data=many, auth=auth).status_code
        == 200
    )
    bodies = []
    for ext in ("s1", "s2"):
        listed = client.get(f"{api}/tickets.json?external_id={ext}", auth=auth)
        assert listed.status_code == 200, listed.get_data()
        bodies.append(json.loads(listed.get_data())["tickets"][0]["description"])
    assert bodies == ["a\ud800b", "\udfff"]
