"""Records of the NewStore fake: stock per (node, product), orders and their items, fulfillment requests
and event-stream integrations. Plain dataclasses; the tenant (:mod:`.state`) owns and mutates them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .common import iso
from .eventstream import DeliveryTarget

# -- inventory -------------------------------------------------------------------------------------


@dataclass
class Allocation:
    order_uuid: str
    item_uuid: str
    created_at: str


@dataclass
class Reservation:
    order_uuid: str
    item_uuid: str
    created_at: str
    expires_at: str


@dataclass
class StockRecord:
    """Stock of one product at one fulfillment node."""

    on_hand: int = 0
    safety_stock: int = 0
    allocations: dict[str, Allocation] = field(default_factory=dict)  # item uuid -> allocation
    reservations: dict[str, Reservation] = field(default_factory=dict)  # item uuid -> reservation

    @property
    def atp(self) -> int:
        """on_hand - allocations - reservations - safety stock, floored at 0."""
        return max(0, self.on_hand - len(self.allocations) - len(self.reservations) - self.safety_stock)


# -- orders ----------------------------------------------------------------------------------------


@dataclass
class OrderItem:
    id: str
    external_item_id: str
    product_id: str
    list_price: Decimal  # in the order's price method (tax incl. for tax_included)
    item_discount: Decimal
    order_discount: Decimal
    price: Decimal  # paid, in the order's price method
    tax: Decimal
    tax_rate: Decimal
    status: str  # pending | in_fulfillment | on_hold | complete | cancelled | returned
    service_level: str
    fulfillment_node_id: str | None = None
    discounts: list[dict[str, Any]] = field(default_factory=list)
    extended_attributes: list[dict[str, Any]] = field(default_factory=list)
    addon_parent_item_id: str | None = None
    rejected_nodes: set[str] = field(default_factory=set)


@dataclass
class Order:
    id: str
    external_id: str
    origin: str  # newstore | external
    channel_type: str  # store | web | mobile
    channel: str
    store_id: str | None
    fulfillment_node_id: str | None  # POS sales: the selling store's node
    currency: str
    price_method: str
    placed_at: datetime
    created_at: datetime
    items: list[OrderItem]
    fulfillment_type: str
    shipping_total: Decimal = Decimal(0)
    shipping_tax: Decimal = Decimal(0)
    customer_email: str | None = None
    customer_name: str | None = None
    customer_id: str | None = None
    associate_id: str | None = None
    shop_locale: str | None = None
    shipping_address: dict[str, Any] | None = None
    billing_address: dict[str, Any] | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    extended_attributes: list[dict[str, Any]] = field(default_factory=list)
    is_historical: bool = False
    cancelled: bool = False

    @property
    def status(self) -> str:
        if any(i.status == "on_hold" for i in self.items):
            return "on_hold"
        if all(i.status in ("complete", "cancelled", "returned") for i in self.items):
            return "closed"
        return "open"

    def gross(self, item: OrderItem) -> Decimal:
        return item.price if self.price_method == "tax_included" else item.price + item.tax

    @property
    def grand_total(self) -> Decimal:
        items = sum((i.price for i in self.items), Decimal(0))
        taxes = sum((i.tax for i in self.items), Decimal(0)) + self.shipping_tax
        total = items + self.shipping_total
        return total if self.price_method == "tax_included" else total + taxes


@dataclass
class FrItem:
    item_id: str
    product_id: str
    status: str = "dispatched"  # dispatched | shipped | rejected | cancelled
    carrier: str | None = None
    tracking_code: str | None = None


@dataclass
class FulfillmentRequest:
    id: str
    order_id: str
    fulfillment_node_id: str
    service_level: str
    created_at: datetime
    items: list[FrItem]
    acknowledged: bool = False

    @property
    def status(self) -> str:
        done = [i.status != "dispatched" for i in self.items]
        if all(done):
            return "completed"
        if any(done):
            return "partially_completed"
        return "acknowledged" if self.acknowledged else "dispatched"

    def to_json(self) -> dict[str, Any]:
        return {
            "fulfillment_request_id": self.id,
            "fulfillment_node_id": self.fulfillment_node_id,
            "service_level": self.service_level,
            "status": self.status,
            "created_at": iso(self.created_at),
            "items": [{"item_id": i.item_id, "product_id": i.product_id, "status": i.status,
                       "carrier": i.carrier, "tracking_code": i.tracking_code} for i in self.items],
        }


@dataclass
class Integration:
    id: str
    integration_type: str
    callback_url: str | None
    api_key: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    filter_conditions: Any
    created_at: datetime
    status: str = "created"  # created | running | stopped

    def accepts(self, at: datetime) -> bool:
        if self.status != "running" or not self.callback_url:
            return False
        if self.starts_at and at < self.starts_at:
            return False
        return not (self.ends_at and at > self.ends_at)

    def target(self) -> DeliveryTarget:
        return DeliveryTarget(self.id, self.callback_url or "", self.api_key or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration_type": self.integration_type,
            "status": self.status,
            "starts_at": iso(self.starts_at) if self.starts_at else None,
            "ends_at": iso(self.ends_at) if self.ends_at else None,
            "callback_parameters": {"callback_url": self.callback_url},  # api_key is never echoed
            "filter_conditions": self.filter_conditions,
            "created_at": iso(self.created_at),
        }
