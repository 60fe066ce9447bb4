"""Typed client for the commercetools HTTP API (production code; never imports the simulators).

Going live needs the region's API and auth URLs (`https://api.{region}.commercetools.com`,
`https://auth.{region}.commercetools.com`), the project key and an API client (id, secret, scopes). Resources come
back as the API's JSON (dicts); typed records are built by the adapters that use them (`reads`:
`CommercetoolsReads`, the commerce datasets in the Centra connector's record types).

Modules: `client` (CommercetoolsClient: transport, paging, resources), `auth` (client-credentials token cache),
`errors` (the error envelope as exceptions), `predicates` (query predicate literals), `reads` (imported from its
module).
"""

from pipelines.connectors.commercetools.client import MAX_LIMIT, CommercetoolsClient, product_projection
from pipelines.connectors.commercetools.errors import (
    CommercetoolsError,
    ConcurrentModification,
    DuplicateField,
    OutOfStock,
    ResourceNotFound,
)

__all__ = ["MAX_LIMIT", "CommercetoolsClient", "CommercetoolsError", "ConcurrentModification", "DuplicateField",
           "OutOfStock", "ResourceNotFound", "product_projection"]
