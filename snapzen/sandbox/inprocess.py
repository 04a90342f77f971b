"""The sandbox's WSGI app served in-process: a requests transport adapter, no socket, no thread.

As httpx mounts an app with ``WSGITransport``, a session mounts :class:`WsgiAdapter` on a URL
prefix and every request to it becomes one WSGI call of the app (the whole sandbox: routing,
auth, rate limits, faults, the store). Tests use it through
``snapzen.clients.origin.mounted``: the clients snapzen builds from settings then talk to the
sandbox as they would to the loopback server, minus the network::

    box = Sandbox(SandboxConfig(chats=0), serve=False)
    with mounted(box.base_url, box.adapter):
        ...  # SNAPZEN_*__BASE_URL from box.env()
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPResponse
from werkzeug.test import EnvironBuilder, run_wsgi_app

from snapzen.sandbox.config import service_time

WsgiApp = Callable[..., Iterable[bytes]]


class WsgiAdapter(BaseAdapter):
    """Sends a PreparedRequest to a WSGI app and hands back its answer as a requests Response
    (streamed from memory, so body caps and ``read1`` work as on a socket). Like any HTTP
    server, it adds a ``Date`` header unless the app sent one (``send_date=False``: a proxy
    that drops it)."""

    def __init__(self, app: WsgiApp, *, send_date: bool = True) -> None:
        super().__init__()
        self.app = app
        self.send_date = send_date

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        environ = EnvironBuilder(
            path=url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method or "GET",
            headers=list(request.headers.items()),
            data=body.encode("utf-8") if isinstance(body, str) else bytes(body),
        ).get_environ()
        chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        content = b"".join(chunks)
        code, _, reason = status.partition(" ")
        fields = CaseInsensitiveDict(dict(headers))
        if self.send_date and "Date" not in fields:
            fields["Date"] = formatdate(service_time(), usegmt=True)
        fields.setdefault("Content-Length", str(len(content)))
        response = requests.Response()
        response.status_code, response.reason, response.headers = int(code), reason, fields
        response.raw = HTTPResponse(
            body=io.BytesIO(content),
            headers=dict(fields),
            status=int(code),
            reason=reason,
            preload_content=False,
            decode_content=False,
        )
        response.encoding = get_encoding_from_headers(fields)
        response.url, response.request = request.url or "", request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        return None
