"""Resources: the store of record, the estate and the platform API clients.

URLs default to the local simulators; credentials always come from the environment (`EnvVar`).
Pointing at real tenants is configuration only (README, "Going live").
"""


import os
from functools import cached_property

import dagster as dg
from sqlalchemy import Engine

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.estate import Estate, load_estate
from pipelines.settings import settings
from pipelines.store.db import shared_engine


class StoreOfRecord(dg.ConfigurableResource):
    """SQLAlchemy engine over PIPELINES_DATABASE_URL (SQLite file by default, PostgreSQL in production).

    Dagster builds a resource per run and per sensor tick; the engine is the process's one engine for the
    URL (built and migrated once per process, `pipelines.store.db.shared_engine`), not one per instance.
    """

    database_url: str

    def engine(self) -> Engine:
        return shared_engine(self.database_url)


class EstateResource(dg.ConfigurableResource):
    """The estate file: locations, markets, price lists, catalog and the mappings between platforms."""

    path: str

    @cached_property
    def _estate(self) -> Estate:
        return load_estate(self.path)

    def get(self) -> Estate:
        return self._estate


class CentraResource(dg.ConfigurableResource):
    """Centra GraphQL Integration API (or the simulator)."""

    base_url: str
    token: str
    timeout_s: float = 30.0

    def client(self) -> CentraClient:
        return CentraClient(self.base_url, self.token, timeout=self.timeout_s)


class NewStoreResource(dg.ConfigurableResource):
    """NewStore Omnichannel APIs (or the simulator), OAuth client credentials."""

    base_url: str
    tenant: str
    client_id: str
    client_secret: str
    auth_url: str | None = None
    timeout_s: float = 30.0

    def client(self) -> NewStoreClient:
        return NewStoreClient(self.base_url, self.tenant, self.client_id, self.client_secret,
                              auth_url=self.auth_url, timeout=self.timeout_s)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    s = settings()
    return {
        "store": StoreOfRecord(database_url=s.database_url),
        "estate": EstateResource(path=str(s.estate_file)),
        "centra": CentraResource(
            base_url=os.environ.get("CENTRA_API_URL", "http://127.0.0.1:8081"),
            token=dg.EnvVar("CENTRA_API_TOKEN"),
        ),
        "newstore": NewStoreResource(
            base_url=os.environ.get("NEWSTORE_API_URL", "http://127.0.0.1:8082"),
            tenant=os.environ.get("NEWSTORE_TENANT", "nordlys-sandbox"),
            client_id=dg.EnvVar("NEWSTORE_CLIENT_ID"),
            client_secret=dg.EnvVar("NEWSTORE_CLIENT_SECRET"),
            auth_url=os.environ.get("NEWSTORE_AUTH_URL") or None,
        ),
    }
