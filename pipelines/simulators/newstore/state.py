"""In-memory NewStore tenant: inventory, orders, fulfillment requests, returns, integrations, events.

Identifiers used by the fake (see the package docstring for the full contract):

* fulfillment node id = ``Location.newstore_node_id`` (``SE01``, ``DC01``); product id = SKU.
* NewStore store id = ``Location.id`` (``ST-SE01``); stores are listed by ``GET /stores``.
* Every event payload carries an increasing integer ``logical_timestamp`` (one per event, tenant-wide),
  so a consumer can order stock counts against stock deltas.

All public methods are thread-safe (one re-entrant lock). World methods accept ``at`` (event time,
default: the clock); naive datetimes are taken as UTC.

Layout: :class:`NewStoreState` is assembled here from one mixin per area: ``core`` (records, lock, ids,
event publication), ``inventory``, ``orders`` (POS sales, injection, cancellation) on top of
``fulfilment`` (routing, ``set_items_states``), ``returns`` and ``integrations``. The records live in
``records``, the JSON views in ``views``, the injection validation in ``validation``, shared helpers
in ``common``; their names are re-exported here.
"""

from __future__ import annotations

from .common import ADJUSTMENT_EVENT, D, EventSink, SimError, iso, money, parse_time, tax_included
from .integrations import IntegrationsMixin
from .inventory import InventoryMixin
from .orders import OrdersMixin
from .records import (
    Allocation,
    FrItem,
    FulfillmentRequest,
    Integration,
    Order,
    OrderItem,
    Reservation,
    StockRecord,
)
from .returns import ReturnsMixin

__all__ = [
    "ADJUSTMENT_EVENT", "Allocation", "D", "EventSink", "FrItem", "FulfillmentRequest", "Integration",
    "NewStoreState", "Order", "OrderItem", "Reservation", "SimError", "StockRecord", "iso", "money",
    "parse_time", "tax_included",
]


class NewStoreState(InventoryMixin, OrdersMixin, ReturnsMixin, IntegrationsMixin):
    """The whole simulated tenant. Build it from an :class:`Estate`.

    ``NewStoreState(estate, *, tenant, clock, seed, emitter, count_chunk_size, safety_stock, conflict_mode,
    max_items_per_order, late_publication_rate, late_publication_s)``; see ``StateCore.__init__``.
    """
