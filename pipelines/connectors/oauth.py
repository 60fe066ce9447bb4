"""The OAuth 2.0 client-credentials token cache the platform connectors share (commercetools, Business Central).

A token is fetched when none is cached or the cached one is about to expire (10 % of its lifetime, at most 5 minutes,
early); `invalidate()` drops a token the server refused (the clients do so on a 401 and retry once). Each platform
says how it asks for a token (`_request`) and how it words a refusal (`_refused`); secrets stay in the subclass and
never reach a log line or an error message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from pipelines.connectors.errors import AuthError
from pipelines.connectors.retry import raise_for_status, transient_from_transport


class CachedToken:
    """A thread-safe cache of one client-credentials token."""

    platform = "OAuth"  # names the platform in error messages
    default_ttl_s = 3600.0  # when the answer has no `expires_in`

    def __init__(self, http: httpx.Client, token_url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self.token_url = token_url
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
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

    def _request(self) -> httpx.Response:
        """The platform's token request."""
        raise NotImplementedError

    def _refused(self, resp: httpx.Response) -> AuthError:
        """The error for a refused token request (HTTP 400/401/403)."""
        raise NotImplementedError

    def _accept(self, body: dict[str, Any]) -> None:
        """What else the platform's token answer says (e.g. the granted scope)."""

    def _fetch(self) -> None:
        try:
            resp = self._request()
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc
        if resp.status_code in (400, 401, 403):  # invalid_client, invalid_scope, unauthorized_client
            raise self._refused(resp)
        raise_for_status(resp)
        body = resp.json()
        token = body.get("access_token")
        if not token:
            raise AuthError(f"{self.platform} token response without access_token", status=resp.status_code)
        ttl = float(body.get("expires_in") or self.default_ttl_s)
        self._token = str(token)
        self._expires_at = self._clock() + ttl - min(300.0, ttl * 0.1)
        self._accept(body)
        self.fetches += 1
