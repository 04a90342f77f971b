"""users/search lags as Zendesk's index does ("it can take up to a few minutes for new
tickets, users, and other resources to be indexed for search"): the same setting and clock as
ticket search, ``SandboxConfig.search_index_lag_seconds``."""

from __future__ import annotations

import math

import requests

from snapzen.sandbox import Sandbox, SandboxConfig

LAG = 120.0


def _search(box: Sandbox, http: requests.Session, email: str) -> list[int]:
    answer = http.get(f"{box.zendesk_base_url}/api/v2/users/search", params={"query": email})
    assert answer.status_code == 200, answer.text
    return [user["id"] for user in answer.json()["users"]]


def test_a_new_user_is_found_only_once_the_index_lag_has_passed() -> None:
    box = Sandbox(SandboxConfig(chats=0, search_index_lag_seconds=LAG), serve=False)
    now = [1_780_000_000.0]  # before the API-token sunset (2027-04-30)
    box.app.store.clock = lambda: now[0]
    http = requests.Session()
    http.auth = (f"{box.config.zendesk_email}/token", box.config.zendesk_token)
    http.mount(box.base_url, box.adapter)

    ann = box.app.store.add_user("ann@example.org")
    older = box.app.store.add_user("bob@example.org", created=-math.inf)
    assert _search(box, http, "ann@example.org") == []  # created this instant: not indexed
    assert _search(box, http, "bob@example.org") == [older]
    assert _search(box, http, box.config.zendesk_email) == [box.app.store.api_user_id]
    now[0] += LAG - 1
    assert _search(box, http, "ann@example.org") == []
    now[0] += 1
    assert _search(box, http, "ANN@example.org") == [ann]
    # The account still knows the user at once: by id, and as a ticket's requester.
    shown = http.get(f"{box.zendesk_base_url}/api/v2/users/show_many", params={"ids": str(ann)})
    assert [user["id"] for user in shown.json()["users"]] == [ann]


def test_without_lag_a_user_is_found_at_once() -> None:
    box = Sandbox(SandboxConfig(chats=0, search_index_lag_seconds=0), serve=False)
    http = requests.Session()
    http.auth = (f"{box.config.zendesk_email}/token", box.config.zendesk_token)
    http.mount(box.base_url, box.adapter)
    ann = box.app.store.add_user("ann@example.org")
    assert _search(box, http, "ann@example.org") == [ann]
