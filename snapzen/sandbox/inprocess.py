"""The sandbox's WSGI app served in-process: a requests transport adapter, no socket, no thread.

As httpx mounts an app with ``WSGITransport``, a session mounts :class:`WsgiAdapter` on a URL
prefix and every request to it becomes one WSGI call of the app (the whole sandbox: routing,
auth, rate limits, faults, the store). Tests use it through
``snapzen.clients.origin.mounted``: the clients snapzen builds from settings then talk to the
sandbox as they would to the loopback server, minus the network::

    box = InProcessSandbox(SandboxConfig(chats=0))
    with mounted(box.base_url, box.adapter):
        ...  # SNAPZEN_*__BASE_URL from box.env()
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPResponse

from snapzen.sandbox.app import SandboxApp
from snapzen.sandbox.config import Addressed, SandboxConfig
from snapzen.sandbox.data import generate

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

WsgiApp = Callable[..., Iterable[bytes]]


class WsgiAdapter(BaseAdapter):
    """Sends a PreparedRequest to a WSGI app and hands back its answer as a requests Response
    (streamed from memory, so body caps and ``read1`` work as on a socket). Like any HTTP
    server, it adds a ``Date`` header unless the app sent one (``send_date=False``: a proxy
    that drops it)."""

    def __init__(self, app: WSGIApplication | WsgiApp, *, send_date: bool = True) -> None:
        super().__init__()
        self.app = app
        self.send_date = send_date

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        https = url.scheme == "https"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method or "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(url.path or "/", "latin-1"),
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "localhost",
            "SERVER_PORT": str(url.port or (443 if https else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_HOST": url.netloc,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        answer: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda chunk: None

        chunks = self.app(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return self._response(request, answer["status"], answer["headers"], content)

    def _response(
        self,
        request: requests.PreparedRequest,
        status: str,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> requests.Response:
        code, _, reason = status.partition(" ")
        fields = CaseInsensitiveDict(dict(headers))
        if self.send_date and "Date" not in fields:
            now = time.time()  # the emulated service's own clock
            fields["Date"] = formatdate(now, usegmt=True)
        fields.setdefault("Content-Length", str(len(content)))
        raw = HTTPResponse(
            body=io.BytesIO(content),
            headers=dict(fields),
            status=int(code),
            reason=reason,
            preload_content=False,
            decode_content=False,
        )
        response = requests.Response()
        response.status_code = int(code)
        response.reason = reason
        response.headers = fields
        response.raw = raw
        response.encoding = get_encoding_from_headers(fields)
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        return None


class InProcessSandbox(Addressed):
    """The sandbox app (SnapEngage and Zendesk) without a server, at ``base_url``: the same
    app the loopback ``Sandbox`` serves, its store and data set at hand for a test's setup."""

    def __init__(
        self, config: SandboxConfig | None = None, *, base_url: str = "https://sandbox.test"
    ) -> None:
        self.config = config or SandboxConfig(chats=0)
        now = datetime.now(UTC)  # the emulated service's own clock, not snapzen's
        self.dataset = generate(self.config, self.config.anchor or now)
        self.app = SandboxApp(self.config, self.dataset)
        self.base_url = base_url.rstrip("/")
        self.app.store.base_url = self.base_url
        self.adapter = WsgiAdapter(self.app)
