"""Zendesk deactivates every API token on 2027-04-30: against the sandbox, whose account
clock has passed that day, snapzen's error for the refused token names the fix (OAuth)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from snapzen.clients.http import HttpClient
from snapzen.clients.origin import mounted
from snapzen.clients.zendesk import ZendeskClient
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.errors import AuthError
from snapzen.support.settings import HttpSettings, ZendeskSettings


def test_a_refused_api_token_after_the_sunset_names_oauth_as_the_fix() -> None:
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    box.app.store.clock = lambda: datetime(2027, 5, 1, tzinfo=UTC).timestamp()
    settings = ZendeskSettings(
        base_url=box.zendesk_base_url,
        email=box.config.zendesk_email,
        api_token=SecretStr(box.config.zendesk_token),
    )
    with mounted(box.base_url, box.adapter):
        client = ZendeskClient(settings, HttpClient(HttpSettings(), service="zendesk"))
        with pytest.raises(AuthError) as refused:
            client.check_credentials()
    message = str(refused.value)
    assert "401" in message and "2027-04-30" in message and "OAUTH_CLIENT_ID" in message
    assert box.config.zendesk_token not in message
    # OAuth credentials for the same account go on working.
    oauth = settings.model_copy(
        update={
            "api_token": None,
            "oauth_client_id": box.config.oauth_client_id,
            "oauth_client_secret": SecretStr(box.config.oauth_client_secret),
        }
    )
    with mounted(box.base_url, box.adapter):
        client = ZendeskClient(oauth, HttpClient(HttpSettings(), service="zendesk"))
        assert client.check_credentials()
