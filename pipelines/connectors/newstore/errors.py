"""NewStore-specific errors (the shared hierarchy is in `pipelines.connectors.errors`)."""

from __future__ import annotations

from pipelines.connectors.errors import ConnectorError


class NewStoreAPIError(ConnectorError):
    """A non-retryable 4xx answer; ``error_code`` comes from the Problem body when present."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 error_code: str | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.error_code = error_code


class NotFound(NewStoreAPIError):
    """HTTP 404."""


class Conflict(NewStoreAPIError):
    """HTTP 409 (e.g. an integration id that exists already)."""


class OrderConflict(Conflict):
    """The same ``external_id`` was injected before with different data."""
