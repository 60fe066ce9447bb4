"""The simulated Centra tenant: catalog, stock, orders, shipments, returns and the stock ledger.

One re-entrant lock guards everything; the GraphQL app holds it for a whole request, so every
request sees a consistent snapshot and mutations are atomic. The Python "world API" (`place_order`,
`ship_order`, `create_return`, `stock_of`, `stock_changes`) is what the trading generator uses,
since Centra has no create-order mutation.

Conventions (documented deviations, see the package docstring): prices are tax-included; money is
rounded to 2 decimals; refund payment entries carry a negative value (money out); the stock ledger
records every physical or free-to-allocate movement, `deliveredQuantity` = physical delta and
`freeToAllocateQuantity` = FTA delta (initial stock from the estate is not in the ledger).

Layout: `CentraState` is assembled here from one mixin per area, each on top of the previous:
`tenant` (construction from the estate, catalog lookups, knobs, ids, the stock ledger), `stock`
(changeStock/setStock, allocation), `shipments`, `orders` and `returns` (returns and refunds). The
records live in `records`, the world API's dict views in `views`; their names are re-exported here.
"""

from __future__ import annotations

from .allocation import AllocationMixin
from .events import EventsMixin
from .orders import OrdersMixin
from .records import (
    AllocationRec,
    ForcedFailure,
    Listener,
    MutationError,
    OrderLineRec,
    OrderRec,
    PaymentRec,
    ReturnLineRec,
    ReturnRec,
    ShipmentLineRec,
    ShipmentRec,
    StockChangeLineRec,
    StockChangeRec,
    StockRecord,
    _utc,
)
from .returns import ReturnsMixin
from .shipments import ShipmentsMixin
from .stock import StockMixin
from .tenant import COUNTRY_NAMES, TenantCore

__all__ = [
    "COUNTRY_NAMES", "AllocationRec", "CentraState", "ForcedFailure", "Listener", "MutationError", "OrderLineRec",
    "OrderRec", "PaymentRec", "ReturnLineRec", "ReturnRec", "ShipmentLineRec", "ShipmentRec", "StockChangeLineRec",
    "StockChangeRec", "StockRecord", "TenantCore", "_utc",
]


class CentraState(AllocationMixin, EventsMixin, ReturnsMixin, OrdersMixin, ShipmentsMixin, StockMixin, TenantCore):
    """A thread-safe in-memory Centra tenant built from an `Estate`.

    ``CentraState(estate, *, clock, tier, multiplier, interval_scale, rate_limits_enabled,
    first_order_number, app_version)``; see ``TenantCore.__init__``.
    """
