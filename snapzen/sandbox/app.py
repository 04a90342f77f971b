"""The WSGI application: routing plus the transport behaviour every API call goes through
(latency, Zendesk rate limit, fault injection, auth and rate-limit headers)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.data import Dataset
from snapzen.sandbox.faults import Fault, FaultInjector
from snapzen.sandbox.ratelimit import FixedWindowLimiter
from snapzen.sandbox.responses import error, json_response
from snapzen.sandbox.snapengage_api import SnapEngageApi
from snapzen.sandbox.zendesk_api import ZendeskApi
from snapzen.sandbox.zendesk_export import ZendeskExportApi
from snapzen.sandbox.zendesk_store import ZendeskStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_ZD = "/zendesk/api/v2"
URL_MAP = Map(
    [
        Rule("/snapengage/api/v2/<org_id>/logs", endpoint="snapengage.logs", methods=["GET"]),
        Rule("/zendesk/oauth/tokens", endpoint="zendesk.oauth_token", methods=["POST"]),
        Rule(f"{_ZD}/imports/tickets", endpoint="zendesk.import_ticket", methods=["POST"]),
        Rule(
            f"{_ZD}/imports/tickets/create_many",
            endpoint="zendesk.import_create_many",
            methods=["POST"],
        ),
        Rule(f"{_ZD}/job_statuses", endpoint="zendesk.job_statuses_list", methods=["GET"]),
        Rule(
            f"{_ZD}/job_statuses/show_many",
            endpoint="zendesk.job_statuses_show_many",
            methods=["GET"],
        ),
        Rule(f"{_ZD}/job_statuses/<job_id>", endpoint="zendesk.job_status", methods=["GET"]),
        Rule(f"{_ZD}/tickets", endpoint="zendesk.tickets_list", methods=["GET"]),
        Rule(f"{_ZD}/tickets/show_many", endpoint="zendesk.tickets_show_many", methods=["GET"]),
        Rule(f"{_ZD}/users/me", endpoint="zendesk.users_me", methods=["GET"]),
        Rule(
            f"{_ZD}/tickets/destroy_many",
            endpoint="zendesk.tickets_destroy_many",
            methods=["DELETE"],
        ),
        Rule(f"{_ZD}/tickets/<int:ticket_id>", endpoint="zendesk.ticket_show", methods=["GET"]),
        Rule(f"{_ZD}/tickets/<int:ticket_id>", endpoint="zendesk.ticket_update", methods=["PUT"]),
        Rule(
            f"{_ZD}/tickets/<int:ticket_id>/comments",
            endpoint="zendesk.ticket_comments",
            methods=["GET"],
        ),
        Rule(f"{_ZD}/search", endpoint="zendesk.search", methods=["GET"]),
        Rule(f"{_ZD}/search/count", endpoint="zendesk.search_count", methods=["GET"]),
        Rule(
            f"{_ZD}/tickets/<int:ticket_id>", endpoint="zendesk.ticket_delete", methods=["DELETE"]
        ),
        Rule(f"{_ZD}/deleted_tickets", endpoint="zendesk.deleted_tickets_list", methods=["GET"]),
        Rule(
            f"{_ZD}/deleted_tickets/destroy_many",
            endpoint="zendesk.deleted_tickets_destroy_many",
            methods=["DELETE"],
        ),
        Rule(f"{_ZD}/users/search", endpoint="zendesk.users_search", methods=["GET"]),
        Rule(f"{_ZD}/users/show_many", endpoint="zendesk.users_show_many", methods=["GET"]),
        Rule(f"{_ZD}/search/export", endpoint="zdexport.search_export", methods=["GET"]),
        Rule(
            f"{_ZD}/incremental/tickets/cursor",
            endpoint="zdexport.incremental_tickets",
            methods=["GET"],
        ),
        Rule(f"{_ZD}/users/<int:user_id>", endpoint="zendesk.user_delete", methods=["DELETE"]),
        Rule(f"{_ZD}/users/<int:user_id>", endpoint="zendesk.user_show", methods=["GET"]),
        Rule(
            f"{_ZD}/users/<int:user_id>/tickets/requested",
            endpoint="zendesk.user_tickets_requested",
            methods=["GET"],
        ),
        Rule(
            f"{_ZD}/users/<int:user_id>/tickets/ccd",
            endpoint="zendesk.user_tickets_ccd",
            methods=["GET"],
        ),
        Rule(
            f"{_ZD}/deleted_users/<int:user_id>",
            endpoint="zendesk.deleted_user_delete",
            methods=["DELETE"],
        ),
        Rule("/_sandbox/state", endpoint="_sandbox.state", methods=["GET"]),
        Rule("/_sandbox/tickets", endpoint="_sandbox.tickets", methods=["GET"]),
        Rule("/_sandbox/truth", endpoint="_sandbox.truth", methods=["GET"]),
        Rule("/_sandbox/reset-counters", endpoint="_sandbox.reset_counters", methods=["POST"]),
    ],
    strict_slashes=False,
)

_UNFAULTED = {"zendesk.oauth_token"}
_NO_AUTH = {"zendesk.oauth_token"}


class SandboxApp:
    def __init__(self, cfg: SandboxConfig, dataset: Dataset) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.store = ZendeskStore(cfg)
        self.snapengage = SnapEngageApi(cfg, dataset)
        self.zendesk = ZendeskApi(cfg, self.store)
        self.export = ZendeskExportApi(cfg, self.store)
        self.limiter = FixedWindowLimiter(cfg.rate_limit_per_minute, cfg.rate_window_seconds)
        self.index_limiter = FixedWindowLimiter(
            cfg.tickets_index_per_minute, cfg.rate_window_seconds
        )
        self.faults = FaultInjector(cfg)
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.responses_429 = 0
        self.too_many_jobs = 0
        self._request_ids = itertools.count(1)

    # ---- inspection ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state = self.store.stats()
        with self._lock:
            state.update(
                requests=dict(self.requests),
                responses_429=self.responses_429,
                too_many_jobs_429=self.too_many_jobs,
            )
        state["faults_injected"] = self.faults.snapshot()
        state["cases_generated"] = len(self.dataset.cases)
        state["widgets"] = list(self.dataset.widget_ids)
        state["anchor"] = self.dataset.anchor.isoformat().replace("+00:00", "Z")
        return state

    def truth(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.dataset.truth]

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.responses_429 = 0
            self.too_many_jobs = 0
        self.faults.reset()

    # ---- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        # Zendesk accepts an optional ".json" suffix on every endpoint; clients use both forms.
        if path.startswith("/zendesk/") and path.endswith(".json"):
            path = path[: -len(".json")]
        adapter = URL_MAP.bind_to_environ(request.environ)
        try:
            endpoint, matched = adapter.match(path, method=request.method)
            args = dict(matched)
        except MethodNotAllowed:
            endpoint, args = "method_not_allowed", {}
        except NotFound:
            endpoint, args = "not_found", {}
        except HTTPException as exc:  # e.g. a strict-slash redirect
            return exc.get_response(request.environ)
        with self._lock:
            self.requests[str(endpoint)] += 1
        endpoint = str(endpoint)
        if endpoint.startswith("_sandbox."):
            return self._inspection(endpoint)
        is_zendesk = path.startswith("/zendesk/")
        if self.cfg.latency_ms > 0 and (is_zendesk or path.startswith("/snapengage/")):
            time.sleep(self.cfg.latency_ms / 1000)
        if is_zendesk:
            response = self._zendesk(request, endpoint, args)
        elif endpoint == "snapengage.logs":
            response = self._faulted(request, endpoint, args, mutating=False)
        else:
            response = self._unrouted(endpoint)
        if response.status_code == 429:
            with self._lock:
                self.responses_429 += 1
        return response

    def _unrouted(self, endpoint: str) -> Response:
        if endpoint == "method_not_allowed":
            return error(405, "MethodNotAllowed", "Method not allowed")
        return error(404, "InvalidEndpoint", "Not found")

    def _zendesk(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        decision = self.limiter.hit()
        index = self.index_limiter.hit() if endpoint == "zendesk.tickets_list" else None
        if not decision.allowed or (index is not None and not index.allowed):
            response = self._rate_limited()
        elif endpoint in ("not_found", "method_not_allowed"):
            response = self._unrouted(endpoint)
        else:
            mutating = request.method in ("POST", "PUT", "DELETE")
            response = self._faulted(request, endpoint, args, mutating)
        if response.status_code == 429 and response.headers.get("Retry-After") is None:
            spent = index if index is not None and not index.allowed else decision
            response.headers["Retry-After"] = str(spent.reset_seconds)
        if (
            endpoint
            in (
                "zendesk.import_create_many",
                "zendesk.tickets_destroy_many",
                "zendesk.deleted_tickets_destroy_many",
            )
            and response.status_code == 429
            and b"TooManyJobs" in response.get_data()
        ):
            with self._lock:
                self.too_many_jobs += 1
        now = self.store.tick()
        remaining_jobs = max(0, self.cfg.max_jobs_in_flight - len(self.store.in_flight(now)))
        headers = response.headers
        headers["X-Rate-Limit"] = str(decision.limit)
        headers["X-Rate-Limit-Remaining"] = str(decision.remaining)
        if self.cfg.rate_header_style == "2024":
            headers["ratelimit-limit"] = str(decision.limit)
            headers["ratelimit-remaining"] = str(decision.remaining)
            headers["ratelimit-reset"] = str(decision.reset_seconds)
        else:
            headers["rate-limit-reset"] = str(decision.reset_seconds)
        if index is not None:
            headers["zendesk-ratelimit-tickets-index"] = (
                f"total={index.limit}; remaining={index.remaining}; resets={index.reset_seconds}"
            )
        headers["zendesk-ratelimit-inflight-jobs"] = (
            f"total={self.cfg.max_jobs_in_flight}; remaining={remaining_jobs}; resets=60"
        )
        headers["X-Zendesk-Request-Id"] = f"sandbox-{next(self._request_ids):08x}"
        return response

    def _rate_limited(self) -> Response:
        with self._lock:
            odd = self.responses_429 % 2 == 1
        text = "Number of allowed API requests per minute exceeded"
        # Real Zendesk sometimes answers 429 in plain text; clients must not assume JSON.
        if odd:
            return Response(text, status=429, content_type="text/plain; charset=utf-8")
        return error(429, "APIRateLimitExceeded", text)

    def _faulted(
        self, request: Request, endpoint: str, args: dict[str, Any], mutating: bool
    ) -> Response:
        fault = None if endpoint in _UNFAULTED else self.faults.draw(mutating, endpoint)
        if fault is not None and not fault.after:
            return _fault_response(fault)
        response = self._handle(request, endpoint, args)
        if fault is None:
            return response
        if fault.kind == "timeout":
            # The work is done; the answer just arrives too late for a client with a short read
            # timeout, which cannot know whether its write happened.
            time.sleep(self.cfg.fault_timeout_seconds)
            return response
        if fault.kind == "malformed_json":
            text = response.get_data(as_text=True) or '{"job_status": {"id": "'
            return Response(
                text[: max(1, len(text) // 2)],
                status=200,
                content_type="application/json; charset=utf-8",
            )
        return _fault_response(fault)

    def _handle(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        if endpoint == "snapengage.logs":
            return self.snapengage.logs(request, **args)
        if endpoint not in _NO_AUTH and not self.zendesk.authenticated(request):
            return json_response({"error": "Couldn't authenticate you"}, 401)
        owner: object = self.export if endpoint.startswith("zdexport.") else self.zendesk
        handler: Callable[..., Response] = getattr(owner, endpoint.split(".", 1)[1])
        return handler(request, **args)

    def _inspection(self, endpoint: str) -> Response:
        if endpoint == "_sandbox.state":
            return json_response(self.state())
        if endpoint == "_sandbox.tickets":
            return json_response(self.store.inspect_tickets())
        if endpoint == "_sandbox.truth":
            return json_response(self.truth())
        self.reset_counters()
        return json_response({"ok": True})


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "http_500":
        return error(500, "InternalServerError", "Something went wrong (injected fault)")
    if fault.kind == "http_502":
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            status=502,
            content_type="text/html; charset=utf-8",
        )
    if fault.kind == "http_503_retry_after":
        response = error(503, "DatabaseTimeout", "Database timeout or deadlock; retry later")
        response.headers["Retry-After"] = "1"
        return response
    if fault.kind == "http_503":
        return Response(
            "Service Unavailable: scheduled maintenance",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    # "timeout" and "malformed_json" are always applied after processing (see FaultInjector);
    # answering a 504 keeps this branch total should that ever change.
    return error(504, "GatewayTimeout", "Upstream timed out")
