"""Exception hierarchy shared by the platform connectors."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class for every error a connector raises."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthError(ConnectorError):
    """Credentials missing, invalid or expired (HTTP 401/403). Never retried."""


class TransientError(ConnectorError):
    """A failure worth retrying: 5xx, timeouts, dropped connections.

    `request_sent` is False when the request provably never reached the server (connect errors), so
    even a non-idempotent request may be resent; True/None means the server may have processed it.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 request_sent: bool | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.request_sent = request_sent


class RateLimited(TransientError):
    """HTTP 429. `retry_after` is the server's advice in seconds from now (None if absent/unparseable).

    A rate-limited request was not processed, so it is always safe to resend.
    """

    def __init__(self, message: str = "rate limited", *, retry_after: float | None = None,
                 status: int | None = 429, body: str | None = None) -> None:
        super().__init__(message, status=status, body=body, request_sent=False)
        self.retry_after = retry_after
