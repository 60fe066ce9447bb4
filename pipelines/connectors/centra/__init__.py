"""Typed client for Centra's GraphQL Integration API (`POST <base_url>/graphql`).

Going live needs only the tenant's base URL and an Integration API token. Errors: 401/403 ->
`AuthError`; 429 -> retried after `Retry-After`; 5xx/499/transport -> retried with backoff and
jitter (queries and idempotent mutations only); GraphQL `errors` -> `CentraGraphQLError`;
non-empty mutation `userErrors` -> `CentraUserError` (userWarnings are logged and returned).

`change_stock`/`transfer_stock` are not idempotent: when one fails ambiguously (5xx or a dropped
connection after sending) the client looks in the stock-change ledger for a change with the same
description and exactly the same lines before resending, so use a unique description per batch
(e.g. include a batch id); that also makes batches easy to find with `stock_changes()`.

Typed results are frozen dataclasses; timestamps are ISO-8601 strings in UTC.

Modules: `client` (CentraClient), `models` (results), `queries` (GraphQL documents), `decode`
(nodes -> results), `errors`, `signature` (webhook HMAC and body). Import from this package. Beside them,
imported from their modules: `events` (the events queue: `set_event_listeners`, `fetch_events`,
`confirm_events`), `flows` (`CentraCommerce`, the order flows' commerce platform), `order_api` (the REST Order
API's create-order), `catalog` (the catalog NewStore's import takes).
"""

from pipelines.connectors.centra import models
from pipelines.connectors.centra.client import INTERVAL_SECONDS, PAGE_LIMIT, CentraClient
from pipelines.connectors.centra.errors import CentraGraphQLError, CentraUserError
from pipelines.connectors.centra.models import *  # noqa: F403  (the typed results: models.__all__)
from pipelines.connectors.centra.signature import (
    centra_signature,
    parse_webhook_events,
    verify_webhook_signature,
)

__all__ = ["INTERVAL_SECONDS", "PAGE_LIMIT", "CentraClient", "CentraGraphQLError", "CentraUserError",
           "centra_signature", "parse_webhook_events", "verify_webhook_signature"]
__all__ += models.__all__
