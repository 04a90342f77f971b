"""Every spelling of every rate-limit header in recorded traffic is read (issue 24).

Real accounts answer with ``ratelimit`` as one word (2024 recordings) or hyphenated
(``rate-limit``, 2023 recordings, e.g. 26 List Tickets answers carrying
``zendesk-rate-limit-tickets-index``). Each spelling is written out here as a literal, one test
case per spelling, and each test shows that the spelling changes what snapzen does (without it
the request would go at once, or wait for the wrong window): dropping a spelling from
``snapzen.clients.pacing`` fails its case.
"""

from __future__ import annotations

import pytest
import responses
from pydantic import SecretStr

from snapzen.clients.http import HttpClient
from snapzen.clients.pacing import RateLimitPacer
from snapzen.clients.zendesk import ZendeskClient
from snapzen.support.settings import HttpSettings, ZendeskSettings
from tests.sync_parts import FakeClock

BASE = "https://acme.zendesk.com"
EMPTY = {"tickets": [], "next_page": None, "previous_page": None, "count": 0}


def _client(clock: FakeClock) -> ZendeskClient:
    settings = ZendeskSettings(
        base_url=BASE, email="ops@acme.example", api_token=SecretStr("zd-token-4e2a9c")
    )
    http = HttpClient(HttpSettings(max_attempts=1), service="zendesk", sleep=clock.sleep)
    return ZendeskClient(settings, http, clock=clock, sleep=clock.sleep)


# ---------------------------------------------------------------- the account budget


@pytest.mark.parametrize(
    "spelling", ["X-Rate-Limit-Remaining", "ratelimit-remaining", "rate-limit-remaining"]
)
def test_the_remaining_budget_is_read_in_each_spelling(spelling: str) -> None:
    pacer = RateLimitPacer(clock=FakeClock())
    pacer.observe({"ratelimit-reset": "30"})  # the reset alone says nothing
    assert pacer.delay() == 0
    pacer.observe({spelling: "2", "ratelimit-reset": "30"})
    assert pacer.delay() == pytest.approx(30)  # within the reserve: wait for the reset


@pytest.mark.parametrize("spelling", ["X-Rate-Limit", "ratelimit-limit", "rate-limit-limit"])
def test_the_account_limit_is_read_in_each_spelling(spelling: str) -> None:
    # A 20-a-minute plan keeps back 2, not the default 5: with 3 left the request may go.
    unknown = RateLimitPacer(clock=FakeClock())
    unknown.observe({"X-Rate-Limit-Remaining": "3", "ratelimit-reset": "30"})
    assert unknown.delay() == pytest.approx(30)
    known = RateLimitPacer(clock=FakeClock())
    known.observe({spelling: "20", "X-Rate-Limit-Remaining": "3", "ratelimit-reset": "30"})
    assert known.delay() == 0


@pytest.mark.parametrize("spelling", ["ratelimit-reset", "rate-limit-reset", "X-Rate-Limit-Reset"])
def test_the_reset_is_read_in_each_spelling(spelling: str) -> None:
    pacer = RateLimitPacer(clock=FakeClock())
    pacer.observe({"X-Rate-Limit-Remaining": "2", spelling: "17"})
    assert pacer.delay() == pytest.approx(17)  # not the 60 s assumed without a reset


# ---------------------------------------------------------------- endpoint budgets


@pytest.mark.parametrize(
    "spelling", ["zendesk-ratelimit-tickets-index", "zendesk-rate-limit-tickets-index"]
)
@responses.activate
def test_the_list_tickets_budget_is_read_in_each_spelling(spelling: str) -> None:
    clock = FakeClock()
    client = _client(clock)
    url = f"{BASE}/api/v2/tickets"
    low = {spelling: "total=100; remaining=2; resets=43"}
    responses.add(responses.GET, url, json=EMPTY, headers=low)
    responses.add(responses.GET, url, json=EMPTY, headers={spelling: "total=100; remaining=99"})
    assert client.find_ticket_ids("snapengage:c1") == []
    assert clock.sleeps == []
    assert client.find_ticket_ids("snapengage:c2") == []
    assert clock.sleeps == [pytest.approx(43)]  # the lookup waited instead of spending a 429
