"""Business Central error envelope and typed errors.

OData errors are ``{"error": {"code": ..., "message": ...}}`` (learn.microsoft.com, "Troubleshooting API
errors"); Entra ID token errors are ``{"error": "<code>", "error_description": "AADSTS..."}``.
"""

from __future__ import annotations

import httpx

from pipelines.connectors.errors import ConnectorError


class EntityChanged(ConnectorError):
    """HTTP 412: the `If-Match` ETag is stale (someone changed the record since it was read)."""


class BcRequestError(ConnectorError):
    """Any other 4xx the API refused, with the OData error `code`."""

    def __init__(self, message: str, *, code: str | None, status: int | None = None, body: str | None = None):
        super().__init__(message, status=status, body=body)
        self.code = code


def envelope(resp: httpx.Response) -> tuple[str | None, str]:
    """(code, message) of an error response, tolerant of non-JSON bodies."""
    try:
        body = resp.json()
    except ValueError:
        return None, resp.text[:500]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return err.get("code"), str(err.get("message", ""))
    if isinstance(err, str):
        return err, str(body.get("error_description", ""))
    return None, resp.text[:500]
