"""OAuth 2.0 client credentials for commercetools (docs.commercetools.com/api/authorization; reference §3.1).

`POST {auth_url}/oauth/token` with HTTP Basic `client_id:client_secret` and the form
`grant_type=client_credentials[&scope=<space-separated scopes>]` answers `{access_token, expires_in, scope,
token_type: "Bearer"}` (default lifetime 172800 s). The token is cached until shortly before `expires_in` runs out
(10 % of the lifetime, at most 5 minutes, early), and `invalidate()` drops it (the client calls it on a 401
`invalid_token` and retries once). Scopes are `name:{projectKey}`; a scope given without `:` gets the project key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import httpx

from pipelines.connectors.commercetools.errors import envelope
from pipelines.connectors.errors import AuthError
from pipelines.connectors.retry import raise_for_status, transient_from_transport


def scope_string(scopes: Iterable[str], project_key: str) -> str:
    """Space-separated scopes, each qualified with the project key unless it already names one."""
    return " ".join(s if ":" in s else f"{s}:{project_key}" for s in scopes)


class TokenSource:
    """A thread-safe cache of one client-credentials token."""

    def __init__(self, http: httpx.Client, auth_url: str, client_id: str, client_secret: str, scope: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self.token_url = f"{auth_url.rstrip('/')}/oauth/token"
        self._credentials = (client_id, client_secret)
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.granted_scope: str | None = None
        self.fetches = 0

    def token(self) -> str:
        """A valid access token (one token request when none is cached or it is about to expire)."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (if it is still the cached one): the server refused it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> None:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        try:
            resp = self._http.post(self.token_url, data=data, auth=self._credentials)
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc
        if resp.status_code in (400, 401, 403):  # invalid_client, invalid_scope, unauthorized_client
            message, errors = envelope(resp)
            code = errors[0].get("code") if errors else None
            raise AuthError(f"commercetools token request refused: HTTP {resp.status_code} {code or ''} {message}",
                            status=resp.status_code, body=resp.text[:2000])
        raise_for_status(resp)
        body = resp.json()
        token = body.get("access_token")
        if not token:
            raise AuthError("commercetools token response without access_token", status=resp.status_code)
        ttl = float(body.get("expires_in") or 172800)
        self._token = str(token)
        self._expires_at = self._clock() + ttl - min(300.0, ttl * 0.1)
        self.granted_scope = body.get("scope")
        self.fetches += 1
