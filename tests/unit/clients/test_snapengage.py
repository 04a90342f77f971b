"""snapzen.clients.snapengage: request shape, paging, loop/host guards, streaming."""

from __future__ import annotations

from datetime import date

import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from snapzen.clients.http import HttpClient
from snapzen.clients.snapengage import LogsPage, SnapEngageClient
from snapzen.support.errors import (
    AuthError,
    ConfigError,
    PaginationLoopError,
    ProtocolError,
    RetriesExhausted,
)
from snapzen.support.settings import HttpSettings, SnapEngageSettings

BASE = "https://www.snapengage.com"
ORG = "1234567890123456"
TOKEN = "0123456789abcdef0123456789abcdef"
WIDGET = "5b1f0a3c-7d2e-4f6a-9b8c-0d1e2f3a4b5c"
LOGS = f"{BASE}/api/v2/{ORG}/logs"
START, END = date(2026, 1, 1), date(2026, 1, 3)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(sleeps: Sleeps | None = None, **overrides: object) -> SnapEngageClient:
    settings = SnapEngageSettings(
        base_url=BASE, org_id=ORG, api_token=SecretStr(TOKEN), widgets=[WIDGET], **overrides
    )
    http = HttpClient(
        HttpSettings(max_attempts=2),
        service="snapengage",
        sleep=sleeps if sleeps is not None else Sleeps(),
    )
    return SnapEngageClient(settings, http)


def first_page_matchers() -> list[object]:
    return [
        matchers.query_param_matcher(
            {"widgetId": WIDGET, "start": "2026-01-01", "end": "2026-01-03", "timezone": "Etc/UTC"}
        ),
        matchers.header_matcher({"Authorization": TOKEN, "Accept": "application/json"}),
    ]


def next_link(n: int) -> str:
    return f"{LOGS}?widgetId={WIDGET}&start=2026-01-01&end=2026-01-03&next=cursor{n}"


def add_next(n: int, body: object) -> None:
    responses.add(
        responses.GET,
        LOGS,
        json=body,
        match=[
            matchers.query_string_matcher(
                f"widgetId={WIDGET}&start=2026-01-01&end=2026-01-03&next=cursor{n}"
            )
        ],
    )


@responses.activate
def test_first_request_shape_raw_token_and_params() -> None:
    responses.add(responses.GET, LOGS, json={"cases": [{"id": "1"}]}, match=first_page_matchers())
    pages = list(make_client().iter_pages(WIDGET, START, END))
    assert pages == [LogsPage(widget_id=WIDGET, number=1, cases=[{"id": "1"}], next_url=None)]
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == TOKEN  # raw: no "Bearer"/"Token" prefix
    assert sent.headers["Accept"] == "application/json"


@pytest.mark.parametrize("terminal", [None, "", "   ", "missing"])
@responses.activate
def test_pages_followed_verbatim_to_the_end(terminal: str | None) -> None:
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [{"id": "1"}], "linkToNextSetOfResults": next_link(1)},
        match=first_page_matchers(),
    )
    add_next(1, {"cases": [{"id": "2"}], "linkToNextSetOfResults": next_link(2)})
    last: dict[str, object] = {"cases": [{"id": "3"}, "junk item kept raw"]}
    if terminal != "missing":
        last["linkToNextSetOfResults"] = terminal
    add_next(2, last)

    pages = list(make_client().iter_pages(WIDGET, START, END))

    assert [p.number for p in pages] == [1, 2, 3]
    assert [c for p in pages for c in p.cases] == [
        {"id": "1"},
        {"id": "2"},
        {"id": "3"},
        "junk item kept raw",
    ]
    assert len(responses.calls) == 3
    # The link is requested as-is: no widgetId/start/end/timezone added a second time.
    assert responses.calls[1].request.url == next_link(1)
    assert all(c.request.headers["Authorization"] == TOKEN for c in responses.calls)


@responses.activate
def test_streaming_next_page_not_requested_until_first_consumed() -> None:
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [], "linkToNextSetOfResults": next_link(1)},
        match=first_page_matchers(),
    )
    add_next(1, {"cases": []})
    pages = make_client().iter_pages(WIDGET, START, END)
    assert len(responses.calls) == 0  # a generator: nothing sent before iteration
    first = next(pages)
    assert first.number == 1
    assert len(responses.calls) == 1
    second = next(pages)
    assert second.number == 2
    assert len(responses.calls) == 2
    assert next(pages, None) is None


@responses.activate
def test_page_pause_uses_the_http_clients_sleep() -> None:
    sleeps = Sleeps()
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [], "linkToNextSetOfResults": next_link(1)},
        match=first_page_matchers(),
    )
    add_next(1, {"cases": []})
    list(make_client(sleeps, page_pause_ms=150).iter_pages(WIDGET, START, END))
    assert sleeps == [0.15]


@responses.activate
def test_repeated_link_is_a_pagination_loop() -> None:
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [], "linkToNextSetOfResults": next_link(1)},
        match=first_page_matchers(),
    )
    add_next(1, {"cases": [{"id": "2"}], "linkToNextSetOfResults": next_link(1)})
    pages = make_client().iter_pages(WIDGET, START, END)
    assert next(pages).number == 1
    assert next(pages).number == 2
    with pytest.raises(PaginationLoopError, match=f"widget {WIDGET}, page 2"):
        next(pages)
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.com/api/v2/1/logs?next=x",
        "http://www.snapengage.com/api/v2/1/logs?next=x",  # downgraded scheme
        "https://www.snapengage.com:8443/api/v2/1/logs?next=x",
    ],
)
@responses.activate
def test_foreign_host_link_is_refused_and_token_not_sent(link: str) -> None:
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [], "linkToNextSetOfResults": link},
        match=first_page_matchers(),
    )
    pages = make_client().iter_pages(WIDGET, START, END)
    next(pages)
    with pytest.raises(ProtocolError, match="outside"):
        next(pages)
    assert len(responses.calls) == 1


@responses.activate
def test_default_port_in_link_is_the_same_host() -> None:
    link = f"https://WWW.snapengage.com:443/api/v2/{ORG}/logs?next=c"
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [], "linkToNextSetOfResults": link},
        match=first_page_matchers(),
    )
    responses.add(
        responses.GET,
        f"https://www.snapengage.com:443/api/v2/{ORG}/logs",
        json={"cases": []},
        match=[matchers.query_string_matcher("next=c")],
    )
    assert len(list(make_client().iter_pages(WIDGET, START, END))) == 2


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ([{"id": "1"}], "body is a list"),
        ("text", "body is a str"),
        ({"cases": {"id": "1"}}, "'cases' is a dict"),
        ({"cases": None}, "'cases' is a NoneType"),
        ({"error": "oops"}, "'cases' is a NoneType"),
        ({"cases": [], "linkToNextSetOfResults": 5}, "linkToNextSetOfResults"),
    ],
)
@responses.activate
def test_unusable_page_is_a_protocol_error(body: object, what: str) -> None:
    responses.add(responses.GET, LOGS, json=body, match=first_page_matchers())
    with pytest.raises(ProtocolError, match=what) as info:
        list(make_client().iter_pages(WIDGET, START, END))
    assert f"widget {WIDGET}, page 1" in str(info.value)


@responses.activate
def test_non_json_page_is_retried_then_fails_naming_it() -> None:
    # A GET is safe to repeat: a body that is not JSON is retried like a 5xx.
    responses.add(responses.GET, LOGS, body="<html>login</html>", match=first_page_matchers())
    with pytest.raises(RetriesExhausted, match="not JSON"):
        list(make_client().iter_pages(WIDGET, START, END))


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_auth_failure_is_auth_error_without_token(status: int) -> None:
    responses.add(responses.GET, LOGS, status=status, body="Unauthorized")
    with pytest.raises(AuthError) as info:
        list(make_client().iter_pages(WIDGET, START, END))
    assert "snapengage" in str(info.value)
    assert TOKEN not in str(info.value)
    assert len(responses.calls) == 1


def test_missing_token_is_a_config_error() -> None:
    settings = SnapEngageSettings(base_url=BASE, org_id=ORG)
    with pytest.raises(ConfigError, match="SNAPZEN_SNAPENGAGE__API_TOKEN"):
        SnapEngageClient(settings, HttpClient(HttpSettings(), service="snapengage"))


@responses.activate
def test_a_page_handed_over_is_not_kept_by_the_paging_while_it_waits() -> None:
    """The reader holding a page (waiting to hand it over) is the page's only owner: the
    suspended paging keeps neither the page nor its decoded body, so a reader that staged the
    page and dropped the raw cases frees them (~2 MB a page)."""
    responses.add(
        responses.GET,
        LOGS,
        json={"cases": [{"id": "c1"}], "linkToNextSetOfResults": next_link(2)},
    )
    pages = make_client().iter_pages(WIDGET, START, END)
    page = next(pages)
    assert page.cases == [{"id": "c1"}]
    frame = pages.gi_frame
    assert frame is not None
    held = list(frame.f_locals.values())
    assert all(value is not page and value is not page.cases for value in held)
    assert not any(isinstance(value, dict) and "cases" in value for value in held)
    pages.close()
