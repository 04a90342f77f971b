"""Zendesk credentials as ``requests`` auth: API token (basic), static OAuth bearer, and OAuth
client credentials with renewal before expiry and once after a 401."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import requests
from requests.auth import AuthBase

from snapzen.clients.http import HttpClient
from snapzen.clients.origin import RedirectRefusedError
from snapzen.clients.pacing import parse_int
from snapzen.support.errors import AuthError, ConfigError, SnapzenError
from snapzen.support.log import get_logger, once, register_secret
from snapzen.support.settings import ZENDESK_CREDENTIALS, ZendeskSettings

log = get_logger("snapzen.clients.zendesk")

API_TOKEN_SUNSET = "2027-04-30"
# Warned once per process in API token mode, and added to a 401 for an API token (Zendesk's
# answer says no more than "Couldn't authenticate").
API_TOKEN_REFUSED = (
    f"Zendesk deactivates every API token on {API_TOKEN_SUNSET} (all calls with one fail from "
    "then on): switch to OAuth (SNAPZEN_ZENDESK__OAUTH_CLIENT_ID and _OAUTH_CLIENT_SECRET)"
)


class ZendeskAuthBase(AuthBase):
    """Sets ``Authorization`` on each attempt (so a renewed token is used by retries too); as
    itself, a fixed header: an API token or a static OAuth bearer token. ``refused``: what
    a 401 for these credentials should also tell the operator."""

    def __init__(self, header: str = "", refused: str = "") -> None:
        register_secret(header)
        self._header, self.refused = header, refused

    def header(self) -> str:
        return self._header

    def renew_after_unauthorized(self) -> bool:
        """Called after a 401: forget the token; True if a new one can be tried once."""
        return False

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.header()
        return request


class ClientCredentialsAuth(ZendeskAuthBase):
    """OAuth client credentials: fetch a token, renew it before expiry and once after a 401.

    Renewal happens at 80 % of the token's lifetime, and at least 60 s before it expires, so a
    request never leaves with a token about to die in flight.
    """

    RENEW_FRACTION = 0.8
    RENEW_MARGIN_SECONDS = 60.0

    def __init__(
        self, settings: ZendeskSettings, secret: str, http: HttpClient, clock: Callable[[], float]
    ) -> None:
        super().__init__()
        register_secret(secret)
        self._token_url = f"{settings.base_url.rstrip('/')}/oauth/tokens"
        self._body = {
            "grant_type": "client_credentials",
            "client_id": settings.oauth_client_id,
            "client_secret": secret,
            "scope": settings.oauth_scope,
        }
        self._http, self._clock = http, clock
        self._token: str | None = None
        self._renew_at: float | None = None
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            renew_at = float("inf") if self._renew_at is None else self._renew_at
            if self._token is None or self._clock() >= renew_at:
                self._fetch()
            return f"Bearer {self._token}"

    def renew_after_unauthorized(self) -> bool:
        with self._lock:
            self._token, self._renew_at = None, None
        return True

    def _fetch(self) -> None:
        try:
            body = self._http.request_json(
                "POST",
                self._token_url,
                json=self._body,
                headers={"Accept": "application/json", "Content-Type": "application/json"},
            )
        except RedirectRefusedError:
            raise  # says itself what was refused, and where to
        except SnapzenError as exc:
            raise AuthError(
                f"zendesk OAuth token request failed ({type(exc).__name__}); check "
                "zendesk.oauth_client_id, oauth_client_secret and oauth_scope"
            ) from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("zendesk OAuth token endpoint answered without an access_token")
        register_secret(token)
        self._token = token
        lifetime = parse_int(str(body.get("expires_in"))) if body.get("expires_in") else None
        self._renew_at = None  # no stated expiry: renew only when refused
        if lifetime is not None and lifetime > 0:
            ahead = min(self.RENEW_FRACTION * lifetime, lifetime - self.RENEW_MARGIN_SECONDS)
            self._renew_at = self._clock() + max(0.0, ahead)


def build_auth(
    settings: ZendeskSettings, http: HttpClient, clock: Callable[[], float] = time.monotonic
) -> ZendeskAuthBase:
    """The first of the credentials given in full (ZendeskSettings.has_credentials)."""
    if settings.oauth_access_token is not None:
        token = settings.oauth_access_token.get_secret_value()
        register_secret(token)
        return ZendeskAuthBase(f"Bearer {token}")
    if settings.oauth_client_id and settings.oauth_client_secret is not None:
        secret = settings.oauth_client_secret.get_secret_value()
        return ClientCredentialsAuth(settings, secret, http, clock)
    if settings.email and settings.api_token is not None:
        # ``Basic base64({email}/token:{api_token})``; Zendesk retires these on 2027-04-30.
        token = settings.api_token.get_secret_value()
        credentials = f"{settings.email}/token:{token}"
        for secret in (token, credentials):
            register_secret(secret)
        if once("zendesk.api_token_deprecated"):  # once per process, not once per client
            log.warning("zendesk.api_token_deprecated", message=API_TOKEN_REFUSED)
        basic = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        return ZendeskAuthBase(basic, API_TOKEN_REFUSED)
    raise ConfigError(f"setting zendesk credentials are required: {ZENDESK_CREDENTIALS}")
