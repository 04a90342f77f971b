"""The WSGI application ``server.Sandbox`` serves (on loopback, or mounted in a requests
session in-process): routing, and what every API call goes through (latency, Zendesk's rate
budgets and their headers, faults, auth), then its handler.

Rate budgets are fixed windows, as Zendesk's headers describe them. Faults are drawn from a
``random.Random`` seeded from the sandbox seed, so a sequential client sees the same faults on
every run with the same seed. For a mutating request a 5xx comes half the time *after* the
write happened (the ambiguous case a client's recovery must handle); a malformed body and a
timeout always follow processing. Tests plan exact faults with ``FaultInjector.plan``.
"""

from __future__ import annotations

import copy
import itertools
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any, NamedTuple

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from snapzen.sandbox import zendesk_api
from snapzen.sandbox.config import SandboxConfig
from snapzen.sandbox.data import Dataset
from snapzen.sandbox.responses import ApiError, error, json_response
from snapzen.sandbox.snapengage import SnapEngage
from snapzen.sandbox.zendesk import Zendesk

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class Hit(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # whole seconds until the window resets, at least 1

    def header(self) -> str:
        """As Zendesk's per-endpoint and job headers give it."""
        return f"total={self.limit}; remaining={self.remaining}; resets={self.reset_seconds}"


class Budget:
    """Requests per fixed window, aligned to the budget's creation, as Zendesk's headers describe
    it (a limit, what remains, when it resets). Refused requests count too, as on the real
    service: a client hammering through 429s gets its budget back no sooner."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit, self.window, self._clock = limit, window_seconds, time.monotonic
        self._origin, self._index, self._count = self._clock(), 0, 0
        self._lock = threading.Lock()

    def hit(self) -> Hit:
        with self._lock:
            elapsed = self._clock() - self._origin
            index = int(elapsed // self.window)
            if index != self._index:
                self._index, self._count = index, 0
            self._count += 1
            reset = max(1, math.ceil((index + 1) * self.window - elapsed))
            return Hit(
                self._count <= self.limit, self.limit, max(0, self.limit - self._count), reset
            )


# What each fault answers (``Fault.answer``).
_FAULTS = {
    "http_500": (500, "application/json", '{"error":"InternalServerError","description":"fault"}'),
    "http_502": (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "http_503": (503, "text/plain", "Service Unavailable: scheduled maintenance"),
    "http_503_retry_after": (
        503,
        "application/json",
        '{"error":"DatabaseTimeout","description":"retry"}',
    ),
    "gateway": (504, "application/json", '{"error":"GatewayTimeout","description":"timed out"}'),
}


@dataclass(frozen=True)
class Fault:
    kind: str
    after: bool  # the request is processed first, then the fault is sent

    def answer(self, response: Response | None, stall: float = 0.0) -> Response:
        """What the client gets instead of ``response`` (None: the work was not done). A
        timeout and a malformed body alter the real answer; without one, they are a gateway's
        timeout (a 504)."""
        if response is not None and self.kind == "timeout":
            # The work is done; the answer just arrives too late for a client with a short read
            # timeout, which cannot know whether its write happened.
            time.sleep(stall)
            return response
        if response is not None and self.kind == "malformed_json":
            text = response.get_data(as_text=True) or '{"job_status": {"id": "'
            return Response(text[: max(1, len(text) // 2)], 200, mimetype="application/json")
        status, mimetype, body = _FAULTS.get(self.kind, _FAULTS["gateway"])
        retry = {"Retry-After": "1"} if self.kind == "http_503_retry_after" else None
        return Response(body, status, retry, mimetype=mimetype)


class FaultInjector:
    def __init__(self, cfg: SandboxConfig) -> None:
        self._rate, self._kinds = cfg.fault_rate, list(cfg.fault_kinds)
        # Timeouts cost real seconds, so their share is set apart from the other kinds.
        others = len([k for k in self._kinds if k != "timeout"])
        share = cfg.timeout_share if others and len(self._kinds) > others else None
        self._weights = [
            1.0 if share is None else share if k == "timeout" else (1 - share) / others
            for k in self._kinds
        ]
        self._rng = Random(f"faults:{cfg.seed}")
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self._planned: dict[str, deque[Fault]] = {}

    def plan(self, endpoint: str, kind: str, *, after: bool, times: int = 1) -> None:
        """The next ``times`` requests to ``endpoint`` (e.g. "zendesk.import_create_many") get
        this fault, whatever the rate: a test's exact scenario ("applied, then a 500")."""
        with self._lock:
            self._planned.setdefault(endpoint, deque()).extend([Fault(kind, after)] * times)

    def draw(self, mutating: bool, endpoint: str = "") -> Fault | None:
        with self._lock:
            planned = self._planned.get(endpoint)
            if planned:
                fault = planned.popleft()
            elif not self._kinds or self._rng.random() >= self._rate:
                return None
            else:
                kind = self._rng.choices(self._kinds, weights=self._weights)[0]
                coin = self._rng.random() < 0.5
                fault = Fault(kind, kind in ("timeout", "malformed_json") or (mutating and coin))
            self.injected[fault.kind] += 1
            return fault

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.injected)

    def reset(self) -> None:
        with self._lock:
            self.injected.clear()
            self._planned.clear()


# METHOD PATH ENDPOINT; "~" is /zendesk/api/v2. "zendesk.x" is x in zendesk_api; the names
# are also the keys of state()["requests"].
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
GET    ~/search/export                            zendesk.search_export
GET    ~/incremental/tickets/cursor               zendesk.incremental_tickets
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
_PLAIN_429 = "Number of allowed API requests per minute exceeded"
_EXPORTS = ("zendesk.search_export", "zendesk.incremental_tickets")


class SandboxApp:
    def __init__(self, cfg: SandboxConfig, dataset: Dataset) -> None:
        self.cfg, self.dataset = cfg, dataset
        self.store = Zendesk(cfg)
        self.snapengage = SnapEngage(cfg, dataset)
        self.limiter = Budget(cfg.rate_limit_per_minute, cfg.rate_window_seconds)
        # Endpoints with a budget of their own, on top of the account's.
        self.budgets = {
            endpoint: Budget(per_minute, cfg.rate_window_seconds)
            for endpoint, per_minute in (
                ("zendesk.tickets_list", cfg.tickets_index_per_minute),
                ("zendesk.search_export", cfg.search_export_rate_per_minute),
                ("zendesk.incremental_tickets", cfg.incremental_export_rate_per_minute),
            )
        }
        self.faults = FaultInjector(cfg)
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.responses_429 = self.too_many_jobs = 0
        self._request_ids = itertools.count(1)

    # ---- inspection (also at /_sandbox/...) ----------------------------------------------------
    def state(self) -> dict[str, Any]:
        store = self.store
        with store.lock:
            store.tick()
            live = [r for r in store.tickets.values() if r.deleted_at is None]
            by_ext: Counter[Any] = Counter(r.data.get("external_id") for r in live)
            by_ext.pop(None, None)
            state = {
                "tickets_count": len(live),
                "archived_tickets_count": sum(1 for r in live if r.archived),
                "deleted_tickets_count": len(store.tickets) - len(live),
                "purged_tickets_count": len(store.purged),
                # The one number an end-to-end test cares most about: it must stay empty.
                "duplicate_external_ids": sorted(k for k, n in by_ext.items() if n > 1),
                "jobs": {"total": len(store.jobs), "in_flight": len(store.in_flight())},
            }
        with self._lock:
            state.update(
                requests=dict(self.requests),
                responses_429=self.responses_429,
                too_many_jobs_429=self.too_many_jobs,
                faults_injected=self.faults.snapshot(),
            )
        state["cases_generated"] = len(self.dataset.cases)
        state["widgets"] = list(self.dataset.widget_ids)
        state["anchor"] = self.dataset.anchor.isoformat().replace("+00:00", "Z")
        return state

    def tickets(self) -> list[dict[str, Any]]:
        with self.store.lock:
            self.store.tick()
            return [
                {
                    **copy.deepcopy(r.data),
                    "archived": r.archived,
                    "deleted": r.deleted_at is not None,
                    "deleted_at": r.deleted_at,
                    "job_id": r.job_id,
                }
                for r in self.store.tickets.values()
            ]

    def truth(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.dataset.truth]

    def reset_counters(self) -> dict[str, bool]:
        with self._lock:
            self.requests.clear()
            self.responses_429 = self.too_many_jobs = 0
        self.faults.reset()
        return {"ok": True}

    # ---- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        # Zendesk accepts an optional ".json" suffix on every endpoint; clients use both forms.
        zendesk = request.path.startswith("/zendesk/")
        path = request.path.removesuffix(".json") if zendesk else request.path
        try:
            endpoint, args = URL_MAP.bind_to_environ(request.environ).match(path, request.method)
        except MethodNotAllowed:
            endpoint, args = "method_not_allowed", {}
        except NotFound:
            endpoint, args = "not_found", {}
        except HTTPException as exc:  # e.g. a strict-slash redirect
            return exc.get_response(request.environ)
        with self._lock:
            self.requests[endpoint] += 1
        if endpoint.startswith("_sandbox."):
            return json_response(getattr(self, endpoint.removeprefix("_sandbox."))())
        if self.cfg.latency_ms > 0 and (zendesk or path.startswith("/snapengage/")):
            time.sleep(self.cfg.latency_ms / 1000)
        if zendesk:
            response = self._zendesk(request, endpoint, args)
        else:
            response = self._faulted(request, endpoint, args)
        if response.status_code == 429:
            with self._lock:
                self.responses_429 += 1
                self.too_many_jobs += b"TooManyJobs" in response.get_data()
        return response

    def _zendesk(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        account = self.limiter.hit()
        own = self.budgets[endpoint].hit() if endpoint in self.budgets else account
        spent = account if own.allowed else own
        if spent.allowed:
            response = self._faulted(request, endpoint, args)
        elif self.responses_429 % 2 == 1 and endpoint not in _EXPORTS:
            # Real Zendesk sometimes answers 429 in plain text; clients must not assume JSON
            # (the export endpoints' own budgets answer with the JSON body).
            response = Response(_PLAIN_429, 429, mimetype="text/plain")
        else:
            response = error(429, "APIRateLimitExceeded", _PLAIN_429).response
        headers = response.headers
        if response.status_code == 429:
            headers.setdefault("Retry-After", str(spent.reset_seconds))
        headers["X-Rate-Limit"] = str(account.limit)
        headers["X-Rate-Limit-Remaining"] = str(account.remaining)
        if self.cfg.rate_header_style == "2024":
            headers["ratelimit-limit"] = str(account.limit)
            headers["ratelimit-remaining"] = str(account.remaining)
            headers["ratelimit-reset"] = str(account.reset_seconds)
        else:
            headers["rate-limit-reset"] = str(account.reset_seconds)
        if endpoint == "zendesk.tickets_list":
            headers["zendesk-ratelimit-tickets-index"] = own.header()
        with self.store.lock:  # threaded server: another request may be adding a job
            self.store.tick()
            flying = len(self.store.in_flight())
        total = self.cfg.max_jobs_in_flight
        inflight = Hit(True, total, max(0, total - flying), 60)
        headers["zendesk-ratelimit-inflight-jobs"] = inflight.header()
        headers["X-Zendesk-Request-Id"] = f"sandbox-{next(self._request_ids):08x}"
        return response

    def _faulted(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        mutating = request.method in ("POST", "PUT", "DELETE")
        unfaulted = endpoint in ("zendesk.oauth_token", "not_found", "method_not_allowed")
        fault = None if unfaulted else self.faults.draw(mutating, endpoint)
        if fault is not None and not fault.after:
            return fault.answer(None)
        try:
            response = self._handle(request, endpoint, args)
        except ApiError as exc:
            response = exc.response
        return response if fault is None else fault.answer(response, self.cfg.fault_timeout_seconds)

    def _handle(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        if endpoint == "snapengage.logs":
            return self.snapengage.logs(request, **args)
        if endpoint == "method_not_allowed":
            raise error(405, "MethodNotAllowed", "Method not allowed")
        if endpoint == "not_found":
            raise error(404, "InvalidEndpoint", "Not found")
        name = endpoint.removeprefix("zendesk.")
        self.store.authorize(request, name)
        handler: Callable[..., Any] = getattr(zendesk_api, name)
        with self.store.lock:
            # Jobs finish on Zendesk's side whether or not anyone asks: apply every one whose
            # time has come before any handler reads the account.
            self.store.tick()
            result = handler(self.store, request, **args)
            return result if isinstance(result, Response) else json_response(result)
