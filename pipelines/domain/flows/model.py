"""What the order flows know of each platform, independent of which platform it is.

The commerce platform (Centra, commercetools) and the store system (NewStore) are read into these types by
their adapters (`pipelines/connectors/*/flows.py`); the flows' decisions (`pipelines/domain/flows/*`) are
pure functions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CommerceLine:
    line_id: str
    sku: str
    quantity: int  # ordered, net of cancellations
    shipped_quantity: int
    returned_quantity: int
    unit_price: float  # what the customer paid per unit, tax included, after discounts
    tax_percent: float  # e.g. 25.0
    external_item_id: str | None = None
    list_price: float | None = None  # the price list's unit price, when the platform keeps it on the line


@dataclass(frozen=True)
class ShipmentLine:
    shipment_line_id: str
    order_line_id: str
    quantity: int


@dataclass(frozen=True)
class CommerceShipment:
    shipment_id: str
    completed: bool
    lines: tuple[ShipmentLine, ...]
    message: str | None = None  # the platform's free-text note on the shipment (our marker travels here)


@dataclass(frozen=True)
class CommerceReturnLine:
    shipment_line_id: str | None
    order_line_id: str | None
    quantity: int


@dataclass(frozen=True)
class CommerceReturn:
    return_id: str
    external_id: str | None
    refunded: bool
    grand_total: float
    tax_total: float
    lines: tuple[CommerceReturnLine, ...] = ()


@dataclass(frozen=True)
class PaymentEntry:
    """One entry of the order's payment history (Centra `paymentHistory`: entryType AUTH | CAPTURE | REFUND | ...,
    status SUCCESS | PENDING | FAILED)."""

    entry_type: str
    status: str


@dataclass(frozen=True)
class CommerceOrder:
    ref: str  # the order's reference the other systems carry (Centra: the order number)
    status: str  # normalised: open | shipped | cancelled
    currency: str
    lines: tuple[CommerceLine, ...]
    shipments: tuple[CommerceShipment, ...] = ()
    returns: tuple[CommerceReturn, ...] = ()
    shipping_option: str | None = None
    allocated_warehouses: tuple[str, ...] = ()  # the warehouses holding the order's allocations
    market_id: str | None = None
    pricelist_id: str | None = None
    email: str | None = None
    grand_total: float = 0.0
    confirmed: bool = True  # accepted for fulfilment (Centra: no longer PENDING)
    # read only by the ERP flow (`CentraCommerce.order_for_erp`; empty elsewhere):
    payments: tuple[PaymentEntry, ...] = ()  # the payment history
    shipping_total: float = 0.0  # shipping charged, tax included (Centra `totals.shipping`)
    order_date: str | None = None  # YYYY-MM-DD: the business day it was placed (the ERP documents carry it)
    delivery_address: CommerceAddress | None = None

    def line(self, line_id: str) -> CommerceLine | None:
        return next((ln for ln in self.lines if ln.line_id == line_id), None)


@dataclass(frozen=True)
class StoreReturnItem:
    item_id: str
    sku: str
    quantity: int
    refund_amount: float
    refund_tax: float | None
    condition: str  # NewStore `item_condition`: sellable | damaged | ...


@dataclass(frozen=True)
class StoreReturn:
    """An in-store return as the store system reported it (NewStore `return.processed`)."""

    return_id: str
    order_id: str | None  # the store system's own order id (None for a blind return)
    external_order_ref: str | None  # the commerce order it returns, when the store system knows it
    location_id: str
    currency: str
    returned_at: str | None
    total_refund_amount: float
    items: tuple[StoreReturnItem, ...]


@dataclass(frozen=True)
class StoreRefund:
    """Money the store system refunded for a return: requested (`refund_request.issued`) and paid out
    (`payment_account.amount_refunded`)."""

    requested: float | None = None
    refunded: float | None = None
    currency: str | None = None
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class StoreOrderItem:
    item_id: str
    external_item_id: str | None
    sku: str
    status: str  # NewStore item status or fulfilment state: shipped (handed over), rejected, ...


@dataclass(frozen=True)
class StoreOrder:
    """An order as the store system holds it (an injected online order)."""

    order_id: str
    external_id: str | None
    status: str
    items: tuple[StoreOrderItem, ...]
    channel_type: str = "web"  # "store": the store's own sale (its external id is a receipt, not an online order)


@dataclass(frozen=True)
class StoreSaleItem:
    """One unit of an order taken at a store's till (NewStore `order.opened` item)."""

    item_id: str
    sku: str
    service_level: str  # IN_STORE_HANDOVER (taken home now) or a delivery service level (endless aisle)
    list_price: float  # tax included
    paid_price: float  # tax included, after item and order discounts
    status: str


@dataclass(frozen=True)
class StoreSaleOrder:
    """An order taken at a store's till as the store system published it (`order.opened`)."""

    order_id: str
    external_id: str | None
    channel_type: str  # store | web | ...
    store_id: str | None  # the selling store (NewStore: the order's channel)
    currency: str
    placed_at: str | None
    email: str | None
    shipping_address: dict[str, Any] | None
    items: tuple[StoreSaleItem, ...]


@dataclass(frozen=True)
class CommerceAllocation:
    """Units of an order line allocated (and not yet shipped) in one warehouse of the commerce platform."""

    line_id: str
    warehouse_id: str
    quantity: int


@dataclass(frozen=True)
class CommerceAddress:
    """The customer's delivery address on a commerce order."""

    first_name: str | None
    last_name: str | None
    line1: str | None
    line2: str | None
    city: str | None
    zip_code: str | None
    country: str | None  # ISO-2
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class StoreFulfilmentItem:
    """One item of a store-system order as a fulfilment node handled it (one entry per node it was routed to)."""

    item_id: str
    node_id: str
    service_level: str
    status: str  # NewStore fulfilment item status: dispatched | shipped | rejected | cancelled
    carrier: str | None = None
    tracking_code: str | None = None
