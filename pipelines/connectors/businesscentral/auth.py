"""OAuth 2.0 client credentials for Business Central (Microsoft Entra ID, v2.0 token endpoint).

`POST {auth_url}/{tenant}/oauth2/v2.0/token` with the form ``grant_type=client_credentials``, ``client_id``,
``client_secret`` and ``scope=https://api.businesscentral.dynamics.com/.default`` answers ``{token_type: "Bearer",
expires_in, ext_expires_in, access_token}``. The token is cached until shortly before it expires (10 % of the
lifetime, at most 5 minutes early); `invalidate()` drops it (the client does so on a 401 and retries once).
The secret is never logged nor put in an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from pipelines.connectors.businesscentral.errors import envelope
from pipelines.connectors.errors import AuthError
from pipelines.connectors.oauth import CachedToken

DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"


class TokenSource(CachedToken):
    """A thread-safe cache of one client-credentials token (`pipelines.connectors.oauth.CachedToken`)."""

    platform = "Business Central"
    default_ttl_s = 3599.0

    def __init__(self, http: httpx.Client, auth_url: str, tenant: str, client_id: str, client_secret: str, *,
                 scope: str = DEFAULT_SCOPE, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(http, f"{auth_url.rstrip('/')}/{tenant}/oauth2/v2.0/token", clock=clock)
        self._client_id = client_id
        self._secret = client_secret
        self.scope = scope

    def __repr__(self) -> str:  # never show the secret
        return f"TokenSource(token_url={self.token_url!r}, client_id={self._client_id!r})"

    def _request(self) -> httpx.Response:
        return self._http.post(self.token_url, data={"grant_type": "client_credentials", "client_id": self._client_id,
                                                     "client_secret": self._secret, "scope": self.scope})

    def _refused(self, resp: httpx.Response) -> AuthError:
        code, message = envelope(resp)
        return AuthError(f"Business Central token request refused: HTTP {resp.status_code} {code or ''} {message}",
                         status=resp.status_code)
