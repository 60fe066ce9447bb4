"""OAuth 2.0 client credentials for commercetools (docs.commercetools.com/api/authorization; reference §3.1).

`POST {auth_url}/oauth/token` with HTTP Basic `client_id:client_secret` and the form
`grant_type=client_credentials[&scope=<space-separated scopes>]` answers `{access_token, expires_in, scope,
token_type: "Bearer"}` (default lifetime 172800 s). The token is cached until shortly before `expires_in` runs out
(10 % of the lifetime, at most 5 minutes, early), and `invalidate()` drops it (the client calls it on a 401
`invalid_token` and retries once). Scopes are `name:{projectKey}`; a scope given without `:` gets the project key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from pipelines.connectors.commercetools.errors import envelope
from pipelines.connectors.errors import AuthError
from pipelines.connectors.oauth import CachedToken


def scope_string(scopes: Iterable[str], project_key: str) -> str:
    """Space-separated scopes, each qualified with the project key unless it already names one."""
    return " ".join(s if ":" in s else f"{s}:{project_key}" for s in scopes)


class TokenSource(CachedToken):
    """A thread-safe cache of one client-credentials token (`pipelines.connectors.oauth.CachedToken`)."""

    platform = "commercetools"
    default_ttl_s = 172800.0

    def __init__(self, http: httpx.Client, auth_url: str, client_id: str, client_secret: str, scope: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(http, f"{auth_url.rstrip('/')}/oauth/token", clock=clock)
        self._credentials = (client_id, client_secret)
        self.scope = scope
        self.granted_scope: str | None = None

    def _request(self) -> httpx.Response:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        return self._http.post(self.token_url, data=data, auth=self._credentials)

    def _refused(self, resp: httpx.Response) -> AuthError:
        message, errors = envelope(resp)
        code = errors[0].get("code") if errors else None
        return AuthError(f"commercetools token request refused: HTTP {resp.status_code} {code or ''} {message}",
                         status=resp.status_code, body=resp.text[:2000])

    def _accept(self, body: dict[str, Any]) -> None:
        self.granted_scope = body.get("scope")
