"""snapzen.clients.zendesk (its bulk reads): a next-page cursor that is not a link is refused.

The incremental export and Export Search Results page by a cursor in each answer
(``after_url`` until ``end_of_stream``; ``links.next`` while ``meta.has_more``). An answer
that says there is more but gives something other than a link (a number, an object) must
stop the read with a ProtocolError: taken as "no next page", the caller would see a read
that ended early as complete (reconciliation and the catch-up would miss tickets).
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from pydantic import SecretStr

from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.support.errors import ProtocolError
from snapzen.support.settings import HttpSettings, ZendeskSettings

BASE = "https://acme.zendesk.com"
INCREMENTAL = f"{BASE}/api/v2/incremental/tickets/cursor"
SEARCH_EXPORT = f"{BASE}/api/v2/search/export"


def _client() -> ZendeskClient:
    settings = ZendeskSettings(
        base_url=BASE, oauth_access_token=SecretStr("a-static-oauth-token-1f2e3d")
    )
    http = HttpClient(HttpSettings(max_attempts=1), service="zendesk", sleep=lambda _s: None)
    return ZendeskClient(settings, http, clock=lambda: 1000.0, sleep=lambda _s: None)


@pytest.mark.parametrize("cursor", [12345, {"href": f"{INCREMENTAL}?cursor=x"}, ["x"]])
@responses.activate
def test_an_incremental_export_page_with_a_cursor_that_is_not_a_link_is_refused(
    cursor: Any,
) -> None:
    body = {"tickets": [{"id": 1}], "end_of_stream": False, "after_url": cursor}
    responses.get(INCREMENTAL, json=body)
    pages = _client().incremental_tickets(start_time=100)
    assert next(pages) == [{"id": 1}]
    with pytest.raises(ProtocolError, match="after_url"):
        next(pages)


@pytest.mark.parametrize("cursor", [12345, {"href": f"{SEARCH_EXPORT}?page=2"}])
@responses.activate
def test_a_search_export_page_with_more_but_no_link_is_refused(cursor: Any) -> None:
    body = {"results": [{"id": 2}], "meta": {"has_more": True}, "links": {"next": cursor}}
    responses.get(SEARCH_EXPORT, json=body)
    pages = _client().search_export("type:ticket")
    assert next(pages) == [{"id": 2}]
    with pytest.raises(ProtocolError, match=r"links\.next"):
        next(pages)


@responses.activate
def test_the_export_ends_at_end_of_stream_and_follows_a_string_cursor() -> None:
    nxt = f"{INCREMENTAL}?cursor=abc"
    responses.get(nxt, json={"tickets": [{"id": 2}], "end_of_stream": True, "after_url": None})
    responses.get(INCREMENTAL, json={"tickets": [{"id": 1}], "end_of_stream": False,
                                     "after_url": nxt})  # fmt: skip
    assert list(_client().incremental_tickets(start_time=100)) == [[{"id": 1}], [{"id": 2}]]
