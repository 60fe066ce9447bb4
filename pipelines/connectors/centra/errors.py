"""Centra-specific errors (the shared hierarchy is in `pipelines.connectors.errors`)."""

from __future__ import annotations

from typing import Any

from pipelines.connectors.errors import ConnectorError


class CentraGraphQLError(ConnectorError):
    """The response carried GraphQL `errors` (HTTP 400 for invalid operations, 200 for resolver errors)."""

    def __init__(self, errors: list[dict[str, Any]], *, status: int | None = None,
                 data: dict[str, Any] | None = None) -> None:
        messages = "; ".join(str(e.get("message", e)) for e in errors[:5]) or "unknown GraphQL error"
        super().__init__(f"Centra GraphQL error (HTTP {status}): {messages}", status=status)
        self.errors = errors
        self.data = data

    @property
    def categories(self) -> set[str]:
        return {str((e.get("extensions") or {}).get("category")) for e in self.errors if e.get("extensions")}


class CentraUserError(ConnectorError):
    """A mutation answered with non-empty `userErrors` (nothing to retry: fix the input)."""

    def __init__(self, user_errors: list[dict[str, Any]], *, user_warnings: list[dict[str, Any]] | None = None,
                 data: dict[str, Any] | None = None) -> None:
        messages = "; ".join(f"{e.get('message')} (path {'.'.join(map(str, e.get('path') or []))})"
                             for e in user_errors[:5])
        super().__init__(f"Centra rejected the mutation: {messages}")
        self.user_errors = user_errors
        self.user_warnings = user_warnings or []
        self.data = data
        #: stock changes already applied by earlier requests of the same call (see `change_stock`)
        self.applied_stock_change_ids: tuple[int, ...] = ()
