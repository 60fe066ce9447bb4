"""OAuth 2.0 client credentials for Business Central (Microsoft Entra ID, v2.0 token endpoint).

`POST {auth_url}/{tenant}/oauth2/v2.0/token` with the form ``grant_type=client_credentials``, ``client_id``,
``client_secret`` and ``scope=https://api.businesscentral.dynamics.com/.default`` answers ``{token_type: "Bearer",
expires_in, ext_expires_in, access_token}``. The token is cached until shortly before it expires (10 % of the
lifetime, at most 5 minutes early); `invalidate()` drops it (the client does so on a 401 and retries once).
The secret is never logged nor put in an error message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from pipelines.connectors.businesscentral.errors import envelope
from pipelines.connectors.errors import AuthError
from pipelines.connectors.retry import raise_for_status, transient_from_transport

DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"


class TokenSource:
    """A thread-safe cache of one client-credentials token."""

    def __init__(self, http: httpx.Client, auth_url: str, tenant: str, client_id: str, client_secret: str, *,
                 scope: str = DEFAULT_SCOPE, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self.token_url = f"{auth_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self._client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0

    def __repr__(self) -> str:  # never show the secret
        return f"TokenSource(token_url={self.token_url!r}, client_id={self._client_id!r})"

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> None:
        data = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._secret,
                "scope": self.scope}
        try:
            resp = self._http.post(self.token_url, data=data)
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc
        if resp.status_code in (400, 401, 403):
            code, message = envelope(resp)
            raise AuthError(f"Business Central token request refused: HTTP {resp.status_code} {code or ''} "
                            f"{message}", status=resp.status_code)
        raise_for_status(resp)
        body = resp.json()
        token = body.get("access_token")
        if not token:
            raise AuthError("Business Central token response without access_token", status=resp.status_code)
        ttl = float(body.get("expires_in") or 3599)
        self._token = str(token)
        self._expires_at = self._clock() + ttl - min(300.0, ttl * 0.1)
        self.fetches += 1
