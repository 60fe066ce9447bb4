"""Cloudshelf (in-store kiosks) ingest GraphQL API: the client, its errors and the GlobalIds we use."""

from pipelines.connectors.cloudshelf import ids
from pipelines.connectors.cloudshelf.client import (
    CloudshelfClient,
    KioskOrder,
    KioskOrderLine,
    KioskProduct,
    KioskVariant,
)
from pipelines.connectors.cloudshelf.errors import CloudshelfGraphQLError, CloudshelfUserError

__all__ = ["CloudshelfClient", "CloudshelfGraphQLError", "CloudshelfUserError", "KioskOrder", "KioskOrderLine",
           "KioskProduct", "KioskVariant", "ids"]
