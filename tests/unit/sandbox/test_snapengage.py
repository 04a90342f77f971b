"""The fake SnapEngage Logs API: auth, validation, paging, date filtering and retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from snapzen.sandbox import Sandbox, SandboxConfig

TIMEOUT = 10


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=260, widgets=2, days=10, seed=5, long_transcripts=0)) as box:
        yield box


def _logs_url(sb: Sandbox, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{sb.snapengage_base_url}/api/v2/{sb.config.org_id}/logs?{query}"


def _get(sb: Sandbox, url: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": token if token is not None else sb.config.snapengage_token}
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def _fetch_all(sb: Sandbox, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    cases: list[dict[str, Any]] = []
    links: list[str] = []
    for _ in range(100):  # bounded: a paging bug must fail, not hang
        response = _get(sb, url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"cases", "linkToNextSetOfResults"}
        cases.extend(body["cases"])
        url = body["linkToNextSetOfResults"]
        links.append(url)
        if not url:
            return cases, links
    raise AssertionError("paging did not terminate")


def _today() -> date:
    return datetime.now(UTC).date()


def test_raw_token_required(sb: Sandbox) -> None:
    url = _logs_url(sb, widgetId=sb.widget_ids[0], start=str(_today()), end=str(_today()))
    assert _get(sb, url).status_code == 200
    assert _get(sb, url, token=f"Bearer {sb.config.snapengage_token}").status_code == 401
    assert _get(sb, url, token="wrong").status_code == 401
    assert requests.get(url, timeout=TIMEOUT).status_code == 401


def test_unknown_org_and_bad_dates(sb: Sandbox) -> None:
    good = _logs_url(sb, start=str(_today()), end=str(_today()))
    assert _get(sb, good.replace(sb.config.org_id, "999")).status_code == 404
    assert _get(sb, _logs_url(sb, end=str(_today()))).status_code == 400
    assert _get(sb, _logs_url(sb, start="yesterday", end=str(_today()))).status_code == 400
    assert _get(sb, _logs_url(sb, start="2024-01-01", end="2024-13-01")).status_code == 400
    bad_next = _logs_url(
        sb, widgetId=sb.widget_ids[0], start="2024-01-01", end="2024-01-02", next="%%%"
    )
    assert _get(sb, bad_next).status_code == 400
    no_widget_next = _logs_url(sb, start="2024-01-01", end="2024-01-02", next="abc")
    assert _get(sb, no_widget_next).status_code == 400


def test_paging_absolute_links_and_empty_end(sb: Sandbox) -> None:
    widget = sb.widget_ids[0]
    start, end = _today() - timedelta(days=12), _today()
    cases, links = _fetch_all(sb, _logs_url(sb, widgetId=widget, start=str(start), end=str(end)))
    expected = [t["id"] for t in sb.truth() if t["widget_id"] == widget]
    assert len(expected) > 100  # the test needs at least two pages
    assert [c["id"] for c in cases] == expected  # complete, no duplicates, stable order
    assert links[-1] == ""
    assert all(link.startswith(sb.snapengage_base_url + "/api/v2/") for link in links[:-1])
    assert all("next=" in link and f"widgetId={widget}" in link for link in links[:-1])
    keys = [(c["created_at_milliseconds"], c["id"]) for c in cases]
    assert keys == sorted(keys)


def test_several_widgets_are_not_paged(sb: Sandbox) -> None:
    start, end = _today() - timedelta(days=12), _today()
    body = _get(sb, _logs_url(sb, start=str(start), end=str(end))).json()
    assert len(body["cases"]) == 100
    assert body["linkToNextSetOfResults"] == ""
    # The first page of every widget's cases merged in (created, id) order.
    assert [c["id"] for c in body["cases"]] == [t["id"] for t in sb.truth()][:100]


def test_end_date_is_inclusive(sb: Sandbox) -> None:
    widget = sb.widget_ids[1]
    day = _today() - timedelta(days=3)
    cases, _ = _fetch_all(sb, _logs_url(sb, widgetId=widget, start=str(day), end=str(day)))
    expected = [
        t["id"]
        for t in sb.truth()
        if t["widget_id"] == widget and t["created_at"].startswith(str(day))
    ]
    assert expected and [c["id"] for c in cases] == expected
    for case in cases:
        assert datetime.fromtimestamp(case["created_at_seconds"], UTC).date() == day


def test_case_shape(sb: Sandbox) -> None:
    widget = sb.widget_ids[0]
    url = _logs_url(
        sb,
        widgetId=widget,
        start=str(_today() - timedelta(days=12)),
        end=str(_today()),
        timezone="Etc/UTC",
    )
    case = _get(sb, url).json()["cases"][0]
    for key in (
        "id",
        "url",
        "type",
        "requested_by",
        "requester_details",
        "description",
        "created_at_date",
        "created_at_seconds",
        "created_at_milliseconds",
        "transcripts",
        "javascript_variables",
        "operator_variables",
        "labels",
        "widget_id",
        "chat_agent_id",
        "chat_agent_alias",
        "ip_address",
        "language_code",
    ):
        assert key in case
    assert case["url"].endswith(case["id"])
    assert case["created_at_date"] == case["created_at_milliseconds"]
    assert case["created_at_seconds"] == case["created_at_milliseconds"] // 1000
    entry = case["transcripts"][0]
    assert set(entry) >= {"id", "alias", "message", "date", "date_seconds", "date_milliseconds"}


def test_sixty_day_retention() -> None:
    with Sandbox(SandboxConfig(chats=80, widgets=1, days=75, seed=2, long_transcripts=0)) as sb:
        widget = sb.widget_ids[0]
        start = _today() - timedelta(days=90)
        cases, _ = _fetch_all(
            sb, _logs_url(sb, widgetId=widget, start=str(start), end=str(_today()))
        )
        cutoff_ms = (datetime.now(UTC) - timedelta(days=60)).timestamp() * 1000
        old = [
            t
            for t in sb.truth()
            if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")).timestamp() * 1000
            < cutoff_ms - 60_000
        ]
        assert old, "the data set must contain chats older than the retention"
        assert all(c["created_at_milliseconds"] >= cutoff_ms - 60_000 for c in cases)
        assert not {t["id"] for t in old} & {c["id"] for c in cases}
        assert len(cases) == len(sb.truth()) - len(old)


def test_same_seed_serves_same_cases() -> None:
    anchor = datetime.now(UTC).replace(microsecond=0)
    cfg = SandboxConfig(chats=30, widgets=1, seed=11, anchor=anchor, long_transcripts=0)
    bodies = []
    for _ in range(2):
        with Sandbox(cfg) as sb:
            url = _logs_url(
                sb,
                widgetId=sb.widget_ids[0],
                start=str(_today() - timedelta(days=8)),
                end=str(_today()),
            )
            bodies.append(_get(sb, url).json()["cases"])
    assert bodies[0] == bodies[1] and bodies[0]
