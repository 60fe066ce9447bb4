"""The composition root for the commerce platform: the estate's `commerce_platform` picks the adapters.

This is the one place that reads the platform's name (`uses_commercetools`: definitions that exist only on one
platform, the customer sync and the messages sensor, ask it too). Everything downstream is written against the ports:
`StockTarget` (the stock sync), `CommerceReads` (the datasets the reconciliation lands), the catalog read (the
export to NewStore) and `AllocatingCommerce` (the order flows). See docs/commercetools.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Protocol

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.centra.catalog import CentraCatalog, read_catalog
from pipelines.connectors.centra.flows import CentraCommerce
from pipelines.connectors.centra.order_api import CentraOrderApi
from pipelines.connectors.commercetools.catalog import read_catalog as read_commercetools_catalog
from pipelines.connectors.commercetools.flows import CommercetoolsCommerce
from pipelines.connectors.commercetools.reads import CommercetoolsReads
from pipelines.defs.resources import CentraResource, CommercetoolsResource, OrderFlowSettings
from pipelines.estate import Estate
from pipelines.sync.centra_io import CentraStockTarget
from pipelines.sync.commercetools_io import CommercetoolsStockTarget
from pipelines.sync.target import StockTarget


class CommerceReads(Protocol):
    """The commerce datasets the daily reconciliation lands (`pipelines/defs/commerce`), as the Centra connector's
    records (`pipelines.connectors.centra.models`), whichever platform they come from."""

    def orders_between(self, start: datetime, end: datetime) -> list[Any]: ...

    def returns_between(self, start: datetime, end: datetime) -> list[Any]: ...

    def stock(self) -> list[Any]: ...

    def stock_changes(self, *, created_from: datetime, created_to: datetime) -> list[Any]: ...

    def product_sizes(self) -> list[Any]: ...

    def orders_by_numbers(self, numbers: Iterable[int]) -> dict[int, Any]: ...


#: Opens the configured platform's reads when called (a `commerce_reads` with its arguments bound).
CommerceOpener = Callable[[], AbstractContextManager[CommerceReads]]


def uses_commercetools(estate: Estate) -> bool:
    if estate.commerce_platform not in ("centra", "commercetools"):
        raise ValueError(f"unknown commerce_platform {estate.commerce_platform!r} in the estate file")
    return estate.commerce_platform == "commercetools"


@contextmanager
def stock_target(estate: Estate, centra: CentraResource, commercetools: CommercetoolsResource) -> Iterator[StockTarget]:
    """The stock sync's view of the configured platform. One attempt per request: the sync's own protocol
    retries (a resend of an unconfirmed write is looked up first)."""
    if uses_commercetools(estate):
        with commercetools.client(estate, max_attempts=1) as client:
            yield CommercetoolsStockTarget(client, estate, requests_per_s=commercetools.requests_per_s)
        return
    with CentraClient(centra.base_url, centra.token, timeout=centra.timeout_s, max_attempts=1) as client:
        yield CentraStockTarget(client, estate)


@contextmanager
def commerce_reads(estate: Estate, centra: CentraResource, commercetools: CommercetoolsResource
                   ) -> Iterator[CommerceReads]:
    """The configured platform's datasets for the reconciliation."""
    if uses_commercetools(estate):
        with commercetools.client(estate) as client:
            yield CommercetoolsReads(client, estate)
        return
    with centra.client() as client:
        yield client


def commerce_catalog(estate: Estate, centra: CentraResource, commercetools: CommercetoolsResource) -> CentraCatalog:
    """The configured platform's catalog (sizes, prices per price list, price lists) for the export to NewStore."""
    if uses_commercetools(estate):
        with commercetools.client(estate) as client:
            return read_commercetools_catalog(client, estate)
    with centra.client() as client:
        return read_catalog(client)


def flow_commerce(estate: Estate, centra: CentraResource, commercetools: CommercetoolsResource | None,
                  settings: OrderFlowSettings) -> CentraCommerce | CommercetoolsCommerce:
    """The order flows' commerce platform (`pipelines.domain.flows.ports.AllocatingCommerce`). Each adapter also
    answers `warehouse_of_location(location)`: the id its allocations name a location by (Centra: the
    warehouse id; commercetools: the supply channel key, the location id)."""
    if uses_commercetools(estate):
        if commercetools is None:
            raise ValueError("the estate runs on commercetools but no commercetools resource is configured")
        return CommercetoolsCommerce(commercetools.client(estate), estate)
    order_api = (CentraOrderApi(settings.centra_order_api_url, settings.centra_order_api_key)
                 if settings.centra_order_api_url and settings.centra_order_api_key else None)
    return CentraCommerce(centra.client(), order_api=order_api)
