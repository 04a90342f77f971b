"""The WSGI application: routing plus the transport behaviour every API call goes through
(latency, Zendesk rate limit, fault injection, auth and rate-limit headers)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
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

# METHOD PATH ENDPOINT; "~" is /zendesk/api/v2. An endpoint names its handler: "zendesk.x" is
# ZendeskApi.x, "zdexport.x" ZendeskExportApi.x; the names are also the keys of state()["requests"].
_ROUTES = """
GET    /snapengage/api/v2/<org_id>/logs           snapengage.logs
POST   /zendesk/oauth/tokens                      zendesk.oauth_token
POST   ~/imports/tickets                          zendesk.import_ticket
POST   ~/imports/tickets/create_many              zendesk.import_create_many
GET    ~/job_statuses                             zendesk.job_statuses_list
GET    ~/job_statuses/show_many                   zendesk.job_statuses_show_many
GET    ~/job_statuses/<job_id>                    zendesk.job_status
GET    ~/tickets                                  zendesk.tickets_list
GET    ~/tickets/show_many                        zendesk.tickets_show_many
DELETE ~/tickets/destroy_many                     zendesk.tickets_destroy_many
GET    ~/tickets/<int:ticket_id>                  zendesk.ticket_show
PUT    ~/tickets/<int:ticket_id>                  zendesk.ticket_update
DELETE ~/tickets/<int:ticket_id>                  zendesk.ticket_delete
GET    ~/tickets/<int:ticket_id>/comments         zendesk.ticket_comments
GET    ~/search                                   zendesk.search
GET    ~/search/count                             zendesk.search_count
GET    ~/search/export                            zdexport.search_export
GET    ~/incremental/tickets/cursor               zdexport.incremental_tickets
GET    ~/deleted_tickets                          zendesk.deleted_tickets_list
DELETE ~/deleted_tickets/destroy_many             zendesk.deleted_tickets_destroy_many
GET    ~/users/me                                 zendesk.users_me
GET    ~/users/search                             zendesk.users_search
GET    ~/users/show_many                          zendesk.users_show_many
GET    ~/users/<int:user_id>                      zendesk.user_show
DELETE ~/users/<int:user_id>                      zendesk.user_delete
GET    ~/users/<int:user_id>/tickets/requested    zendesk.user_tickets_requested
GET    ~/users/<int:user_id>/tickets/ccd          zendesk.user_tickets_ccd
DELETE ~/deleted_users/<int:user_id>              zendesk.deleted_user_delete
GET    /_sandbox/state                            _sandbox.state
GET    /_sandbox/tickets                          _sandbox.tickets
GET    /_sandbox/truth                            _sandbox.truth
POST   /_sandbox/reset-counters                   _sandbox.reset_counters
"""
URL_MAP = Map(
    [
        Rule(path.replace("~", "/zendesk/api/v2", 1), endpoint=endpoint, methods=[method])
        for method, path, endpoint in (line.split() for line in _ROUTES.strip().splitlines())
    ],
    strict_slashes=False,
)
_UNROUTED = {MethodNotAllowed: "method_not_allowed", NotFound: "not_found"}
_PLAIN_429 = "Number of allowed API requests per minute exceeded"


class SandboxApp:
    def __init__(self, cfg: SandboxConfig, dataset: Dataset) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.store = ZendeskStore(cfg)
        self.snapengage = SnapEngageApi(cfg, dataset)
        self.zendesk = ZendeskApi(cfg, self.store)
        self.export = ZendeskExportApi(cfg, self.store)
        window = cfg.rate_window_seconds
        self.limiter = FixedWindowLimiter(cfg.rate_limit_per_minute, window)
        # Endpoints with a budget of their own, on top of the account's.
        self.budgets = {
            endpoint: FixedWindowLimiter(per_minute, window)
            for endpoint, per_minute in (
                ("zendesk.tickets_list", cfg.tickets_index_per_minute),
                ("zdexport.search_export", cfg.search_export_rate_per_minute),
                ("zdexport.incremental_tickets", cfg.incremental_export_rate_per_minute),
            )
        }
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

    def reset_counters(self) -> dict[str, bool]:
        with self._lock:
            self.requests.clear()
            self.responses_429 = 0
            self.too_many_jobs = 0
        self.faults.reset()
        return {"ok": True}

    # ---- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        # Zendesk accepts an optional ".json" suffix on every endpoint; clients use both forms.
        path = request.path
        is_zendesk = path.startswith("/zendesk/")
        if is_zendesk:
            path = path.removesuffix(".json")
        try:
            endpoint, args = URL_MAP.bind_to_environ(request.environ).match(path, request.method)
        except (MethodNotAllowed, NotFound) as exc:
            endpoint, args = _UNROUTED[type(exc)], {}
        except HTTPException as exc:  # e.g. a strict-slash redirect
            return exc.get_response(request.environ)
        endpoint = str(endpoint)
        with self._lock:
            self.requests[endpoint] += 1
        if endpoint.startswith("_sandbox."):
            inspect: Callable[[], Any] = {
                "_sandbox.state": self.state,
                "_sandbox.tickets": self.store.inspect_tickets,
                "_sandbox.truth": self.truth,
            }.get(endpoint, self.reset_counters)
            return json_response(inspect())
        if self.cfg.latency_ms > 0 and (is_zendesk or path.startswith("/snapengage/")):
            time.sleep(self.cfg.latency_ms / 1000)
        if is_zendesk:
            response = self._zendesk(request, endpoint, args)
        elif endpoint == "snapengage.logs":
            response = self._faulted(request, endpoint, args, mutating=False)
        else:
            response = _unrouted(endpoint)
        if response.status_code == 429:
            with self._lock:
                self.responses_429 += 1
                if b"TooManyJobs" in response.get_data():
                    self.too_many_jobs += 1
        return response

    def _zendesk(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        decision = self.limiter.hit()
        budget = self.budgets.get(endpoint)
        own = budget.hit() if budget is not None else None
        spent = own if own is not None and not own.allowed else decision
        if not spent.allowed:
            with self._lock:
                odd = self.responses_429 % 2 == 1
            # Real Zendesk sometimes answers 429 in plain text; clients must not assume JSON
            # (the export endpoints' own budgets answer with the JSON body).
            if odd and not endpoint.startswith("zdexport."):
                response = Response(_PLAIN_429, 429, mimetype="text/plain")
            else:
                response = error(429, "APIRateLimitExceeded", _PLAIN_429)
        elif endpoint in _UNROUTED.values():
            response = _unrouted(endpoint)
        else:
            mutating = request.method in ("POST", "PUT", "DELETE")
            response = self._faulted(request, endpoint, args, mutating)
        headers = response.headers
        if response.status_code == 429 and headers.get("Retry-After") is None:
            headers["Retry-After"] = str(spent.reset_seconds)
        flying = len(self.store.in_flight(self.store.tick()))
        headers["X-Rate-Limit"] = str(decision.limit)
        headers["X-Rate-Limit-Remaining"] = str(decision.remaining)
        if self.cfg.rate_header_style == "2024":
            headers["ratelimit-limit"] = str(decision.limit)
            headers["ratelimit-remaining"] = str(decision.remaining)
            headers["ratelimit-reset"] = str(decision.reset_seconds)
        else:
            headers["rate-limit-reset"] = str(decision.reset_seconds)
        if own is not None and endpoint == "zendesk.tickets_list":
            headers["zendesk-ratelimit-tickets-index"] = (
                f"total={own.limit}; remaining={own.remaining}; resets={own.reset_seconds}"
            )
        total = self.cfg.max_jobs_in_flight
        headers["zendesk-ratelimit-inflight-jobs"] = (
            f"total={total}; remaining={max(0, total - flying)}; resets=60"
        )
        headers["X-Zendesk-Request-Id"] = f"sandbox-{next(self._request_ids):08x}"
        return response

    def _faulted(
        self, request: Request, endpoint: str, args: Mapping[str, Any], mutating: bool
    ) -> Response:
        fault = None if endpoint == "zendesk.oauth_token" else self.faults.draw(mutating, endpoint)
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
                text[: max(1, len(text) // 2)], 200, content_type="application/json; charset=utf-8"
            )
        return _fault_response(fault)

    def _handle(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        if endpoint == "snapengage.logs":
            return self.snapengage.logs(request, **args)
        if endpoint != "zendesk.oauth_token" and not self.zendesk.authenticated(request):
            return json_response({"error": "Couldn't authenticate you"}, 401)
        # Jobs finish on Zendesk's side whether or not anyone asks: apply every one whose time
        # has come before any handler reads the account (those that show a job tick again).
        self.store.tick()
        owner: object = self.export if endpoint.startswith("zdexport.") else self.zendesk
        handler: Callable[..., Response] = getattr(owner, endpoint.split(".", 1)[1])
        return handler(request, **args)


def _unrouted(endpoint: str) -> Response:
    if endpoint == "method_not_allowed":
        return error(405, "MethodNotAllowed", "Method not allowed")
    return error(404, "InvalidEndpoint", "Not found")


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "http_502":
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>", 502, mimetype="text/html"
        )
    if fault.kind == "http_503":
        return Response("Service Unavailable: scheduled maintenance", 503, mimetype="text/plain")
    if fault.kind == "http_503_retry_after":
        return error(
            503,
            "DatabaseTimeout",
            "Database timeout or deadlock; retry later",
            {"Retry-After": "1"},
        )
    if fault.kind == "http_500":
        return error(500, "InternalServerError", "Something went wrong (injected fault)")
    # "timeout" and "malformed_json" are always applied after processing (see FaultInjector);
    # answering a 504 keeps this branch total should that ever change.
    return error(504, "GatewayTimeout", "Upstream timed out")
