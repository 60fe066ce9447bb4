"""Cloudshelf errors: GraphQL `errors[]` and mutation `userErrors {code message}` as typed exceptions.

Transport failures use the shared hierarchy (`pipelines.connectors.errors`): 401/403 -> `AuthError`, 429 ->
`RateLimited` (with `retry_after`), 5xx -> `TransientError`. `userErrors` codes are Cloudshelf's `UserErrorCode`
enum (Cloudshelf+Shopify_CSConnector `src/graphql/cloudshelf/generated/cloudshelf.ts`).
"""

from __future__ import annotations

from typing import Any

from pipelines.connectors.errors import ConnectorError


class CloudshelfGraphQLError(ConnectorError):
    """The answer carried top-level GraphQL `errors` (a malformed query, a bad variable)."""

    def __init__(self, message: str, errors: list[dict[str, Any]], *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.errors = errors


class CloudshelfUserError(ConnectorError):
    """A mutation answered `userErrors`. `operation` names the mutation, `errors` are the `{code, message}`
    pairs, `data` is the payload (what was upserted despite the errors)."""

    def __init__(self, operation: str, errors: list[dict[str, Any]], data: dict[str, Any] | None = None) -> None:
        shown = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{operation}: {len(errors)} user error(s): {shown}{more}")
        self.operation = operation
        self.errors = errors
        self.data = data or {}

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code")) for e in self.errors]
