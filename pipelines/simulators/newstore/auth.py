"""Token endpoints of the NewStore fake: the OpenID Connect client-credentials grant of a realm and the
legacy ``/v0/token`` (password or client-credentials grant). Neither is rate limited."""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from .framework import ApiBase


class AuthHandlers(ApiBase):
    def _client_from(self, request: Request, form: dict[str, str], user_key: str, secret_key: str) -> str | None:
        cid, secret = form.get(user_key), form.get(secret_key)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                user, _, pw = decoded.partition(":")
                cid, secret = unquote(user), unquote(pw)
            except ValueError:
                return None
        if cid and secret is not None and self.clients.get(cid) == secret:
            return cid
        return None

    async def token(self, request: Request, body: Any) -> Any:
        if request.path_params["tenant"] != self.state.tenant:
            return 404, {"error": "Realm does not exist"}
        form = body if isinstance(body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        cid = self._client_from(request, form, "client_id", "client_secret")
        if cid is None:
            return 401, {"error": "unauthorized_client",
                         "error_description": "Invalid client or Invalid client credentials"}
        token, ttl = self.controls.issue_token(cid)
        return {"access_token": token, "expires_in": ttl, "refresh_expires_in": 0, "token_type": "Bearer",
                "not-before-policy": 0, "scope": form.get("scope") or "profile email"}

    async def legacy_token(self, request: Request, body: Any) -> Any:
        form = body if isinstance(body, dict) else {}
        grant = form.get("grant_type")
        if grant == "password":
            cid = self._client_from(request, form, "username", "password")
        elif grant == "client_credentials":
            cid = self._client_from(request, form, "client_id", "client_secret")
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        if cid is None:
            return 401, {"error": "invalid_grant", "error_description": "Invalid credentials"}
        token, ttl = self.controls.issue_token(cid)
        return {"access_token": token, "refresh_token": secrets.token_urlsafe(16), "expires_in": ttl,
                "scope": "", "token_type": "Bearer"}
