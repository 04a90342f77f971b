"""Credentials go only to the configured origin; every request has a deadline and a body cap.

The servers here are real loopback sockets (port 0): what is checked is what urllib3 sends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses
from pydantic import SecretStr

from snapzen.clients.http import HttpClient
from snapzen.clients.origin import (
    CredentialSafeSession,
    OriginError,
    RedirectRefusedError,
    answer_deadline,
    origin_of,
    require_origin,
)
from snapzen.clients.snapengage import SnapEngageClient
from snapzen.support.errors import (
    AmbiguousWriteError,
    ProtocolError,
    RetriesExhausted,
    TransientNetworkError,
)
from snapzen.support.settings import HttpSettings, SnapEngageSettings

BASE = "http://127.0.0.1:18081"
TOKEN = "se-token-5b1e0c7d9a2f4e68b3c1d0e9f8a7b6c5"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:18082\\@127.0.0.1:18081/x",  # urllib3 ends the authority at '\'
        "http://127.0.0.1:18081@127.0.0.2/x",  # "host:port" as a user name
        "http://user:pw@127.0.0.1:18081/x",  # userinfo at all, even on the right host
        "http://127.0.0.1:18081%40127.0.0.2/x",
        "http://127.0.0.1:18081\t@127.0.0.2/x",
        "http://127.0.0.1:18082/x",  # another port
        "https://127.0.0.1:18081/x",  # another scheme
        "http://127.0.0.1/x",  # default port is not 18081
        "http://127.0.0.1.:18081/x",
        "http://localhost:18081/x",
        "//127.0.0.2:18081/x",
        "",
    ],
)
def test_credential_urls_off_the_base_origin_are_refused(url: str) -> None:
    with pytest.raises(OriginError):
        require_origin(url, BASE, what="link")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:18081/api/v2/1/logs?cursor=a%5Cb@c",
        "HTTP://127.0.0.1:18081/x",
        "http://127.0.0.1:018081/x",
        "http://127.0.0.1:18081/x#@127.0.0.2",
        "http://127.0.0.1:18081/\\.evil/x",  # the backslash is in the path as sent
        "http://127.0.0.1:18081\\@127.0.0.2:18082/x",  # sent to 18081, the rest is path
    ],
)
def test_same_origin_urls_pass(url: str) -> None:
    assert origin_of(require_origin(url, BASE, what="link")) == ("http", "127.0.0.1", 18081)


def _client(http: HttpClient) -> SnapEngageClient:
    settings = SnapEngageSettings(
        base_url=BASE, api_token=SecretStr(TOKEN), org_id="7", widgets=["w1"]
    )
    return SnapEngageClient(settings, http)


@responses.activate
def test_backslash_next_link_never_reaches_the_other_host() -> None:
    responses.add(
        responses.GET,
        f"{BASE}/api/v2/7/logs",
        json={"cases": [], "linkToNextSetOfResults": "http://127.0.0.2:18082\\@127.0.0.1:18081/n"},
    )
    client = _client(HttpClient(HttpSettings(max_attempts=1), service="snapengage"))
    pages = client.iter_pages("w1", date(2026, 1, 1), date(2026, 1, 2))
    next(pages)
    with pytest.raises(ProtocolError, match="refusing to send the API credentials"):
        next(pages)
    assert len(responses.calls) == 1
    assert (responses.calls[0].request.url or "").startswith(f"{BASE}/api/v2/7/logs?")


def test_a_restricted_client_refuses_any_other_url_before_sending() -> None:
    http = HttpClient(HttpSettings(max_attempts=1), service="snapengage")
    _client(http)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "http://127.0.0.2:18082/x", json={})
        with pytest.raises(OriginError):
            http.get_json("http://127.0.0.2:18082\\@127.0.0.1:18081/x")
        assert len(mock.calls) == 0


def test_redirect_sessions_drop_credentials_on_any_origin_change() -> None:
    session = CredentialSafeSession()
    assert session.should_strip_auth("http://h.test/a", "https://h.test/a")  # requests keeps it
    assert session.should_strip_auth("http://h.test:8080/a", "http://h.test:8081/a")
    assert session.should_strip_auth("http://h.test/a", "http://o.test\\@h.test/a")
    assert not session.should_strip_auth("http://h.test/a", "http://h.test:80/b")


# ---------------------------------------------------------------- real sockets


Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class _H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def do_POST(self) -> None:
                handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_another_port_is_refused_before_anything_reaches_it(
    serve: Callable[[Handler], str],
) -> None:
    seen: list[str | None] = []

    def other(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization"))
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"{}")

    target = serve(other)

    def redirecting(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", f"{target}/elsewhere")
        h.send_header("Content-Length", "0")
        h.end_headers()

    base = serve(redirecting)
    http = HttpClient(HttpSettings(max_attempts=1), service="snapengage")
    with pytest.raises(RedirectRefusedError, match=r"HTTP 302 redirecting to http://127\.0\.0\.1"):
        http.get_json(f"{base}/start", headers={"Authorization": TOKEN})
    assert (
        seen == []
    )  # not even without the token: tests/unit/clients/test_redirects.py has every status


def _drip(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(1000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass  # the client gave up: that is the point


def test_a_dripping_server_is_cut_off_at_the_total_deadline(
    serve: Callable[[Handler], str],
) -> None:
    url = serve(_drip)
    settings = HttpSettings(max_attempts=1, timeout_seconds=5, total_timeout_seconds=0.6)
    started = time.monotonic()
    with pytest.raises(RetriesExhausted) as caught:
        HttpClient(settings, service="snapengage").get_json(url)
    assert isinstance(caught.value.__cause__, TransientNetworkError)
    assert "total_timeout_seconds" in str(caught.value)
    assert time.monotonic() - started < 3  # each byte came well within the read timeout


def _drip_headers(h: BaseHTTPRequestHandler) -> None:
    """The status line and headers one byte at a time: each read comes well within the read
    timeout, so only a deadline on the whole answer stops it."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: x\r\n" % n for n in range(200))
    try:
        for byte in head:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass  # the client gave up: that is the point


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_server_dripping_its_headers_is_cut_off_at_the_total_deadline(
    serve: Callable[[Handler], str], method: str
) -> None:
    url = serve(_drip_headers)
    settings = HttpSettings(max_attempts=1, timeout_seconds=5, total_timeout_seconds=0.6)
    client = HttpClient(settings, service="zendesk")
    started = time.monotonic()
    if method == "GET":
        with pytest.raises(RetriesExhausted) as caught:
            client.get_json(url)
        assert isinstance(caught.value.__cause__, TransientNetworkError)
    else:  # a write cut off may have been applied: never retried, left for the lookup
        with pytest.raises(AmbiguousWriteError) as caught:
            client.request("POST", url, idempotent=False, json={})
    assert "total_timeout_seconds" in str(caught.value)
    assert time.monotonic() - started < 2.5  # the headers alone would take ~180 s


def test_a_pooled_connection_is_never_cut_by_the_deadline_of_an_answer_it_finished(
    serve: Callable[[Handler], str],
) -> None:
    """Once an answer is read whole its connection is back in the pool, where another thread's
    request may take it: the deadline of the finished answer must not shut that socket."""
    ports: list[int] = []

    def keep_alive(h: BaseHTTPRequestHandler) -> None:
        ports.append(h.client_address[1])
        h.protocol_version = "HTTP/1.1"
        h.send_response(200)
        h.send_header("Content-Length", "2")
        h.send_header("Connection", "keep-alive")
        h.end_headers()
        h.wfile.write(b"{}")

    url = serve(keep_alive)
    session = CredentialSafeSession()
    deadline = time.monotonic() + 0.2
    with answer_deadline(deadline):
        assert session.get(f"{url}/first").json() == {}  # read whole: back in the pool
        while time.monotonic() <= deadline:  # the deadline passes with the block still open
            time.sleep(0.05)
        for timer in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
            timer.join(5)  # a cut due at the deadline has happened by now
    assert session.get(f"{url}/second").json() == {}
    assert len(ports) == 2 and ports[0] == ports[1]  # the same connection, not cut


def test_a_declared_oversized_body_is_refused_unread(serve: Callable[[Handler], str]) -> None:
    def huge(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(300 * 1024 * 1024))
        h.end_headers()
        with contextlib.suppress(OSError):
            h.wfile.write(b"[" * 65536)

    url = serve(huge)
    settings = HttpSettings(max_attempts=1, max_response_bytes=1024 * 1024)
    with pytest.raises(ProtocolError, match=r"over http\.max_response_bytes"):
        HttpClient(settings, service="snapengage").get_json(url)


def test_an_undeclared_oversized_body_is_refused_at_the_cap(
    serve: Callable[[Handler], str],
) -> None:
    sent: list[int] = []

    def endless(h: BaseHTTPRequestHandler) -> None:
        h.protocol_version = "HTTP/1.0"  # no length: the body runs until the socket closes
        h.send_response(200)
        h.end_headers()
        total = 0
        try:
            for _ in range(4096):  # up to 256 MB if nobody stops reading
                h.wfile.write(b" " * 65536)
                total += 65536
        except OSError:
            pass
        sent.append(total)

    url = serve(endless)
    settings = HttpSettings(max_attempts=1, max_response_bytes=2 * 1024 * 1024)
    with pytest.raises(ProtocolError, match=r"over http\.max_response_bytes"):
        HttpClient(settings, service="snapengage").get_json(url)
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent and sent[0] < 64 * 1024 * 1024  # the rest was never pulled
