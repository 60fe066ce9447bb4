"""NewStore REST client: OAuth client-credentials token cache, retries, typed results.

Going live needs only configuration: ``NewStoreClient.for_tenant("acme", client_id, secret)`` targets
``https://acme.p.newstore.net`` with tokens from ``https://id.p.newstore.net/auth/realms/acme/...``.

Retries go through :mod:`pipelines.connectors.retry` (429 honouring ``Retry-After``, 5xx, transport
errors). Reads and ``fulfill_order`` (idempotent on ``external_id``) retry any transient failure; other
writes retry only when the server provably did not process the request (429, connect errors).
A 401/403 refreshes the token once; a second refusal raises :class:`AuthError`.

Modules: `client` (NewStoreClient), `models` (results), `errors`; paging is the shared
:mod:`pipelines.connectors.paging`. Import from this package.
"""

from pipelines.connectors.errors import AuthError, ConnectorError, RateLimited, TransientError
from pipelines.connectors.newstore import models
from pipelines.connectors.newstore.client import NewStoreClient
from pipelines.connectors.newstore.errors import Conflict, NewStoreAPIError, NotFound, OrderConflict
from pipelines.connectors.newstore.models import *  # noqa: F403  (the typed results: models.__all__)

__all__ = ["AuthError", "Conflict", "ConnectorError", "NewStoreAPIError", "NewStoreClient", "NotFound",
           "OrderConflict", "RateLimited", "TransientError"]
__all__ += models.__all__
