"""Business Central (API v2.0) connector: client-credentials auth, OData paging, ETag-aware writes."""

from pipelines.connectors.businesscentral.auth import DEFAULT_SCOPE, TokenSource
from pipelines.connectors.businesscentral.client import BusinessCentralClient, odata_str
from pipelines.connectors.businesscentral.erp import BusinessCentralErp
from pipelines.connectors.businesscentral.errors import BcRequestError, EntityChanged

__all__ = ["DEFAULT_SCOPE", "BcRequestError", "BusinessCentralClient", "BusinessCentralErp", "EntityChanged",
           "TokenSource", "odata_str"]
