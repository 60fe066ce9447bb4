"""commercetools errors: the error envelope `{statusCode, message, errors[{code, message, ...}]}` as typed exceptions.

The shared hierarchy is in `pipelines.connectors.errors`: 401/403 -> `AuthError`, 429 -> `RateLimited`, 5xx ->
`TransientError` (all raised by `pipelines.connectors.retry.raise_for_status`). Every other 4xx is a
`CommercetoolsError`, specialised by its first error `code` (docs.commercetools.com/api/errors;
reference §3.6): 409 `ConcurrentModification` (with `currentVersion`), 404 `ResourceNotFound`, 400
`DuplicateField` and `OutOfStock`.
"""

from __future__ import annotations

from typing import Any

import httpx

from pipelines.connectors.errors import ConnectorError


class CommercetoolsError(ConnectorError):
    """A 4xx answer carrying commercetools' error envelope. `code` is the first error's code."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.code: str | None = str(self.errors[0].get("code")) if self.errors and self.errors[0].get("code") else None


class ConcurrentModification(CommercetoolsError):
    """409: the resource's version moved on. `current_version` is the error's `currentVersion` (optional in the RAML)."""

    @property
    def current_version(self) -> int | None:
        for err in self.errors:
            if err.get("code") == "ConcurrentModification" and err.get("currentVersion") is not None:
                return int(err["currentVersion"])
        return None


class ResourceNotFound(CommercetoolsError):
    """404: no resource with that id/key (or the project key is wrong)."""


class DuplicateField(CommercetoolsError):
    """400 `DuplicateField`: e.g. a second InventoryEntry for the same (sku, supplyChannel), an email taken."""


class OutOfStock(CommercetoolsError):
    """400 `OutOfStock` (`lineItems`, `skus`): an order against an InventoryMode that checks stock."""

    @property
    def skus(self) -> list[str]:
        return [str(s) for err in self.errors if err.get("code") == "OutOfStock" for s in err.get("skus") or []]


_BY_CODE: dict[str, type[CommercetoolsError]] = {
    "ConcurrentModification": ConcurrentModification, "ResourceNotFound": ResourceNotFound,
    "DuplicateField": DuplicateField, "OutOfStock": OutOfStock}


def envelope(response: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    """(message, errors) of an error response; tolerant of bodies that are not the envelope."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500], []
    if not isinstance(body, dict):
        return str(body)[:500], []
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if not errors and body.get("error"):  # OAuth-style answer: {"error": "invalid_token", ...}
        errors = [{"code": body["error"], "message": body.get("error_description") or body.get("message")}]
    return str(body.get("message") or (errors[0].get("message") if errors else "") or ""), errors


def error_code(response: httpx.Response) -> str | None:
    _, errors = envelope(response)
    return str(errors[0].get("code")) if errors and errors[0].get("code") else None


def client_error(response: httpx.Response) -> CommercetoolsError:
    """The typed error of a 4xx (not 401/403/429) response."""
    message, errors = envelope(response)
    status = response.status_code
    codes = [str(e.get("code")) for e in errors]
    cls = next((_BY_CODE[c] for c in codes if c in _BY_CODE), None)
    if cls is None:
        cls = {404: ResourceNotFound, 409: ConcurrentModification}.get(status, CommercetoolsError)
    where = f"{response.request.method} {response.request.url.path}"
    return cls(f"{where}: HTTP {status} {codes[0] if codes else ''} {message}".strip(), status=status,
               body=response.text[:2000], errors=errors)
