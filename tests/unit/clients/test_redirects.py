"""No redirect carries a credential or a body to another origin (issue 23, item 5).

Two real loopback servers, two origins (127.0.0.1 on two ports): the configured one answers
301/302/303/307/308 pointing at the other, and every assertion is on what the other server
actually received. The OAuth token POST, the import POST, Zendesk and SnapEngage GETs and a
crafted next-page link that redirects are each tried with every status.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from pydantic import SecretStr
from typer.testing import CliRunner
from werkzeug.wrappers import Request as WsgiRequest
from werkzeug.wrappers import Response as WsgiResponse

from snapzen.cli import app
from snapzen.clients.http import HttpClient
from snapzen.clients.origin import (
    MAX_SAME_ORIGIN_REDIRECTS,
    CredentialSafeSession,
    RedirectRefusedError,
)
from snapzen.clients.snapengage import SnapEngageClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.ledger.store.db import open_db
from snapzen.policy.models import ImportComment, ImportRequester, ImportTicket
from snapzen.support.errors import AmbiguousWriteError, FatalError, ProtocolError
from snapzen.support.settings import HttpSettings, SnapEngageSettings, ZendeskSettings
from tests import fakes
from tests.fakes import make_case, recent

STATUSES = (301, 302, 303, 307, 308)
SE_TOKEN = "se-token-3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6"
API_TOKEN = "zd-api-token-7c1b2a3d4e5f60718293a4b5c6d7e8f9"
CLIENT_SECRET = "zd-client-secret-a1b2c3d4e5f60718293a4b5c6d7e8f90"
ACCESS_TOKEN = "zd-access-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VISITOR_EMAIL = "visitor.one@example.org"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]
Route = Callable[[Received], Answer]


@dataclass
class Server:
    url: str
    received: list[Received] = field(default_factory=list)
    route: Route | None = None

    def carried(self) -> str:
        """Everything this server was sent, as one text (to look for secrets in)."""
        return "\n".join(
            f"{r.method} {r.path} {r.headers} {r.body.decode('utf-8', 'replace')}"
            for r in self.received
        )


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(value).encode(),
    )


def _redirect(status: int, to: str) -> Answer:
    return status, {"Location": to}, b""


@pytest.fixture
def servers() -> Iterator[Callable[[], Server]]:
    started: list[ThreadingHTTPServer] = []

    def start() -> Server:
        server_box: list[Server] = []

        class _H(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                box = server_box[0]
                box.received.append(got)
                status, headers, body = box.route(got) if box.route else _json(200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        httpd.daemon_threads = True
        server_box.append(Server(f"http://127.0.0.1:{httpd.server_address[1]}"))
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        started.append(httpd)
        return server_box[0]

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def two(servers: Callable[[], Server]) -> tuple[Server, Server]:
    """(the configured origin, another origin that records everything it is sent)."""
    return servers(), servers()


def _zendesk(base: str, **auth: Any) -> ZendeskClient:
    fields: dict[str, Any] = {"base_url": base, "job_poll_seconds": 1.0}
    fields.update(auth or {"email": "agent@example.com", "api_token": SecretStr(API_TOKEN)})
    http = HttpClient(HttpSettings(max_attempts=2), service="zendesk", sleep=lambda s: None)
    return ZendeskClient(ZendeskSettings(**fields), http, sleep=lambda s: None)


def _snapengage(base: str) -> SnapEngageClient:
    settings = SnapEngageSettings(
        base_url=base, org_id="org1", api_token=SecretStr(SE_TOKEN), widgets=["w1"]
    )
    http = HttpClient(HttpSettings(max_attempts=2), service="snapengage", sleep=lambda s: None)
    return SnapEngageClient(settings, http)


def _ticket() -> ImportTicket:
    return ImportTicket(
        external_id="snapengage:1",
        subject="Chat 1",
        requester=ImportRequester(name="Visitor One", email=VISITOR_EMAIL),
        created_at="2026-01-01T10:00:00Z",
        updated_at="2026-01-01T10:05:00Z",
        solved_at="2026-01-01T10:05:00Z",
        status="solved",
        comments=[ImportComment(value="my card is blocked", created_at="2026-01-01T10:00:00Z")],
        tags=["snapengage"],
    )


def _assert_refused(exc: BaseException, status: int, other: Server) -> None:
    """One line naming the status and the other origin, no path/query and no secret."""
    text = str(exc)
    assert f"HTTP {status}" in text and other.url in text
    assert "\n" not in text and "/stolen" not in text and "cursor" not in text
    for secret in (SE_TOKEN, API_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, VISITOR_EMAIL):
        assert secret not in text


# ---------------------------------------------------------------- the baseline


def test_the_other_server_would_see_a_followed_redirect(two: tuple[Server, Server]) -> None:
    """What the assertions below guard against: plain requests re-sends a 307 POST's body."""
    here, other = two
    here.route = lambda r: _redirect(307, f"{other.url}/stolen")
    requests.post(f"{here.url}/oauth/tokens", json={"client_secret": CLIENT_SECRET}, timeout=5)
    assert CLIENT_SECRET in other.carried()


# ---------------------------------------------------------------- Zendesk


@pytest.mark.parametrize("status", STATUSES)
def test_the_oauth_token_post_follows_no_redirect(status: int, two: tuple[Server, Server]) -> None:
    here, other = two
    here.route = lambda r: _redirect(status, f"{other.url}/stolen?x=1")
    client = _zendesk(
        here.url, oauth_client_id="snapzen", oauth_client_secret=SecretStr(CLIENT_SECRET)
    )
    with pytest.raises(RedirectRefusedError) as caught:
        client.job_statuses(["j1"])
    _assert_refused(caught.value, status, other)
    assert "POST is never redirected" in str(caught.value)
    assert isinstance(caught.value, FatalError)
    assert other.received == []
    # Not followed on the same origin either, and a refused redirect is not retried.
    assert [r.path for r in here.received] == ["/oauth/tokens"]


@pytest.mark.parametrize("status", STATUSES)
def test_the_import_post_follows_no_redirect(status: int, two: tuple[Server, Server]) -> None:
    here, other = two
    here.route = lambda r: _redirect(status, f"{other.url}/stolen")
    client = _zendesk(here.url)
    # 303 "see other" may answer a write that was done: left to recovery by lookup.
    expected = AmbiguousWriteError if status == 303 else RedirectRefusedError
    with pytest.raises(expected) as caught:
        client.submit_import([_ticket()])
    _assert_refused(caught.value, status, other)
    assert other.received == []
    posts = [r for r in here.received if r.method == "POST"]
    assert len(posts) == 1 and VISITOR_EMAIL in posts[0].body.decode()


@pytest.mark.parametrize("status", STATUSES)
def test_a_zendesk_get_is_not_redirected_to_another_origin(
    status: int, two: tuple[Server, Server]
) -> None:
    here, other = two
    here.route = lambda r: _redirect(status, f"{other.url}/stolen")
    client = _zendesk(here.url, oauth_access_token=SecretStr(ACCESS_TOKEN))
    with pytest.raises(RedirectRefusedError) as caught:
        client.show_ticket(7)
    _assert_refused(caught.value, status, other)
    assert "another origin" in str(caught.value)
    assert other.received == []


@pytest.mark.parametrize("status", STATUSES)
def test_a_crafted_zendesk_next_page_that_redirects_is_refused(
    status: int, two: tuple[Server, Server]
) -> None:
    here, other = two

    def route(r: Received) -> Answer:
        if r.path.startswith("/crafted"):
            return _redirect(status, f"{other.url}/stolen?page=2")
        return _json(200, {"tickets": [{"id": 1}], "next_page": f"{here.url}/crafted?page=2"})

    here.route = route
    client = _zendesk(here.url)
    with pytest.raises(RedirectRefusedError) as caught:
        client.find_ticket_ids("snapengage:1")
    _assert_refused(caught.value, status, other)
    assert other.received == []


# ---------------------------------------------------------------- SnapEngage


@pytest.mark.parametrize("status", STATUSES)
def test_a_snapengage_get_is_not_redirected_to_another_origin(
    status: int, two: tuple[Server, Server]
) -> None:
    here, other = two
    here.route = lambda r: _redirect(status, f"{other.url}/stolen?token={SE_TOKEN}")
    pages = _snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2))
    with pytest.raises(RedirectRefusedError) as caught:
        next(pages)
    _assert_refused(caught.value, status, other)
    assert other.received == []


@pytest.mark.parametrize("status", STATUSES)
def test_a_crafted_snapengage_next_link_that_redirects_is_refused(
    status: int, two: tuple[Server, Server]
) -> None:
    here, other = two

    def route(r: Received) -> Answer:
        if "cursor" in r.path:
            return _redirect(status, f"{other.url}/stolen?next=cursor2")
        link = f"{here.url}/api/v2/org1/logs?widgetId=w1&next=cursor1"
        return _json(200, {"cases": [], "linkToNextSetOfResults": link})

    here.route = route
    pages = _snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2))
    assert next(pages).cases == []
    with pytest.raises(RedirectRefusedError) as caught:
        next(pages)
    _assert_refused(caught.value, status, other)
    assert other.received == []


# ---------------------------------------------------------------- what is followed


@pytest.mark.parametrize("status", STATUSES)
def test_a_get_follows_its_own_origin_with_its_credentials(
    status: int, servers: Callable[[], Server]
) -> None:
    here = servers()

    def route(r: Received) -> Answer:
        if r.path.startswith("/api/v2/org1/logs"):
            return _redirect(status, "/moved/logs?widgetId=w1&cursor=c0")
        return _json(200, {"cases": [{"id": "1"}]})

    here.route = route
    page = next(_snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2)))
    assert page.cases == [{"id": "1"}]
    _first, second = here.received
    assert second.path == "/moved/logs?widgetId=w1&cursor=c0"  # the first query not re-sent
    assert second.method == "GET" and second.headers.get("Authorization") == SE_TOKEN


def test_same_origin_redirects_are_bounded(servers: Callable[[], Server]) -> None:
    here = servers()
    here.route = lambda r: _redirect(302, f"/loop/{len(here.received)}")
    pages = _snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2))
    with pytest.raises(RedirectRefusedError, match=f"more than {MAX_SAME_ORIGIN_REDIRECTS}"):
        next(pages)
    assert len(here.received) == MAX_SAME_ORIGIN_REDIRECTS + 1  # refused, so not retried


def test_a_write_is_not_redirected_even_to_its_own_origin(servers: Callable[[], Server]) -> None:
    here = servers()
    here.route = lambda r: _redirect(307, "/elsewhere")
    with pytest.raises(RedirectRefusedError, match="DELETE is never redirected"):
        _zendesk(here.url).destroy_tickets([1, 2])
    assert [r.method for r in here.received] == ["DELETE"]


@pytest.mark.parametrize(
    "form",
    [
        "{other}\\@{here_authority}/x",  # urllib3 ends the authority at the backslash
        "{other_scheme}//user:pw@{here_authority}/x",  # userinfo, even on the right host
        "//{other_authority}/x",  # scheme-relative
    ],
)
def test_a_location_disguised_as_the_origin_is_refused(
    form: str, two: tuple[Server, Server]
) -> None:
    here, other = two
    here_authority, other_authority = here.url[7:], other.url[7:]
    target = form.format(
        other=other.url,
        other_scheme="http:",
        here_authority=here_authority,
        other_authority=other_authority,
    )
    here.route = lambda r: _redirect(302, target)
    pages = _snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2))
    with pytest.raises(RedirectRefusedError, match="HTTP 302 redirecting to") as caught:
        next(pages)
    assert other.received == [] and len(here.received) == 1
    assert "pw" not in str(caught.value) and "/x" not in str(caught.value)


def test_a_redirect_without_location_is_refused(servers: Callable[[], Server]) -> None:
    here = servers()
    here.route = lambda r: (302, {}, b"")
    with pytest.raises(ProtocolError, match="HTTP 302 without a Location"):
        next(_snapengage(here.url).iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2)))


def test_the_session_itself_follows_nothing(two: tuple[Server, Server]) -> None:
    """Second line: even asked to follow, the session hands the 3xx back unread."""
    here, other = two
    here.route = lambda r: _redirect(308, f"{other.url}/stolen")
    answer = CredentialSafeSession().post(
        here.url, data=b"body", headers={"Authorization": SE_TOKEN}, timeout=5
    )
    assert answer.status_code == 308 and other.received == []


# ---------------------------------------------------------------- through a whole sync


OTHER = "https://other.test"


@pytest.mark.parametrize("status", STATUSES)
def test_a_sync_whose_import_post_is_redirected_sends_nothing_elsewhere(
    sync_env: Path, apis: fakes.SandboxApis, status: int
) -> None:
    posts: list[int] = []

    def redirect(request: WsgiRequest) -> WsgiResponse:  # the import POST, sent elsewhere
        posts.append(1)
        to = f"{OTHER}/api/v2/imports/tickets/create_many"
        return WsgiResponse("", status, headers={"Location": to})

    apis.answer("/zendesk/api/v2/imports/tickets/create_many", redirect)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        elsewhere = rsps.add(responses.POST, re.compile(rf"{OTHER}/.*"), json={})
        apis.add_cases("w1", [make_case(f"c{n}", started=recent(200)) for n in range(3)])
        result = CliRunner().invoke(app, ["sync"])
        assert elsewhere.call_count == 0
    assert len(posts) == 1  # never repeated, never followed
    db = open_db(sync_env)
    statuses = {row[0] for row in db.execute("SELECT status FROM cases")}
    db.conn.close()
    errors = [ln for ln in result.output.splitlines() if ln.startswith("snapzen: error:")]
    if status == 303:  # may answer a write that was done: left for recovery by lookup
        assert statuses == {"pushing"} and errors == []
    else:  # the server did not take it: the cases go out again next run
        assert result.exit_code == 1 and statuses == {"pending"}
        [line] = errors
        assert f"HTTP {status} redirecting to https://other.test:443; not followed" in line
    assert "Traceback" not in result.output and fakes.ZD_TOKEN not in result.output
