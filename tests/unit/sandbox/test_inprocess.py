"""The sandbox's app mounted in-process (Sandbox(serve=False)): a client built from settings
talks to it as to the loopback server, through the same HTTP client code, without a socket."""

from __future__ import annotations

import pytest
import requests

from snapzen.clients.http import HttpClient
from snapzen.clients.origin import CredentialSafeSession, mounted
from snapzen.commands.clients import zendesk_from
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.errors import AuthError, ProtocolError
from snapzen.support.settings import HttpSettings, load_settings


@pytest.fixture
def box() -> Sandbox:
    return Sandbox(SandboxConfig(chats=3, long_transcripts=0), serve=False)


def test_a_session_made_inside_the_mount_reaches_the_app_and_one_made_outside_does_not(
    box: Sandbox,
) -> None:
    cfg = box.config
    auth = (f"{cfg.zendesk_email}/token", cfg.zendesk_token)
    with mounted(box.base_url + "/", box.adapter):
        inside = CredentialSafeSession()
        me = inside.get(f"{box.zendesk_base_url}/api/v2/users/me.json", auth=auth, timeout=5)
    assert me.status_code == 200 and me.json()["user"]["email"] == cfg.zendesk_email
    assert me.headers["Date"].endswith("GMT")  # as a server sends it: the clock guard reads it
    assert me.headers["X-Rate-Limit"] == str(cfg.rate_limit_per_minute)
    assert box.app.requests["zendesk.users_me"] == 1
    outside = CredentialSafeSession()  # the mount ended: .test resolves nowhere
    with pytest.raises(requests.ConnectionError):
        outside.get(f"{box.zendesk_base_url}/api/v2/users/me.json", auth=auth, timeout=5)
    assert box.app.requests["zendesk.users_me"] == 1


def test_the_http_client_reads_answers_and_errors_as_from_a_socket(box: Sandbox) -> None:
    cfg = box.config
    with mounted(box.base_url + "/", box.adapter):
        client = HttpClient(HttpSettings(), service="zendesk")
        logs = client.get_json(
            f"{box.snapengage_base_url}/api/v2/{cfg.org_id}/logs",
            params={"widgetId": box.dataset.widget_ids[0], "start": "2000-01-01",
                    "end": "2100-01-01"},
            headers={"Authorization": cfg.snapengage_token},
        )  # fmt: skip
        assert {c["id"] for c in logs["cases"]} <= {c["id"] for c in box.dataset.cases}
        with pytest.raises(AuthError):  # the sandbox's 401, classified as any other
            client.get_json(f"{box.zendesk_base_url}/api/v2/users/me.json")
        small = HttpClient(HttpSettings(max_response_bytes=1024), service="snapengage")
        with pytest.raises(ProtocolError, match="max_response_bytes"):
            small.get_json(
                f"{box.snapengage_base_url}/api/v2/{cfg.org_id}/logs",
                params={"start": "2000-01-01", "end": "2100-01-01"},
                headers={"Authorization": cfg.snapengage_token},
            )


def test_a_post_body_arrives_and_creates_the_job(box: Sandbox) -> None:
    cfg = box.config
    ticket = {"external_id": "x:1", "comment": {"body": "hi"}, "requester": {"name": "Ann"}}
    with mounted(box.base_url + "/", box.adapter):
        answer = CredentialSafeSession().post(
            f"{box.zendesk_base_url}/api/v2/imports/tickets/create_many.json",
            json={"tickets": [ticket]},
            auth=(f"{cfg.zendesk_email}/token", cfg.zendesk_token),
            timeout=5,
        )
    assert answer.status_code == 200
    assert answer.json()["job_status"]["total"] == 1
    assert box.app.state()["jobs"]["total"] == 1


def test_clients_built_from_its_settings_reach_it(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert list(settings.snapengage.widgets) == list(box.dataset.widget_ids)
    with mounted(box.base_url + "/", box.adapter):
        who = zendesk_from(settings).check_credentials()
    assert who["role"] == "admin"
    assert box.app.requests["zendesk.users_me"] == 1
