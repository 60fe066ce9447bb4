"""Typed results of the NewStore connector: frozen dataclasses (``raw`` keeps the answer as sent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Atp", "FulfillmentItem", "FulfillmentLocation", "FulfillmentRequest", "InsightEntry", "PosStock",
           "PosStore", "ReturnItem", "ReturnResult", "SalesOrder", "SalesOrderItem", "StockInsights"]


def _raw() -> Any:
    return field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class FulfillmentLocation:
    id: str
    type: str
    is_enabled: bool
    is_inventory_master: bool


@dataclass(frozen=True)
class PosStore:
    id: str
    tenant: str
    country_code: str
    timezone: str | None
    multi_cashbox: bool


@dataclass(frozen=True)
class PosStock:
    fulfillment_node_id: str
    sku: str
    product_id: str
    on_hand: int
    atp: int
    allocations: int
    safety_stock: int


@dataclass(frozen=True)
class Atp:
    product_id: str
    fulfillment_node_id: str
    atp: int


@dataclass(frozen=True)
class InsightEntry:
    order_uuid: str
    item_uuid: str
    created_at: str
    expires_at: str | None = None


@dataclass(frozen=True)
class StockInsights:
    product_id: str
    fulfillment_node_id: str
    allocations: tuple[InsightEntry, ...]
    reservations: tuple[InsightEntry, ...]
    future_allocations: tuple[InsightEntry, ...]


@dataclass(frozen=True)
class SalesOrderItem:
    id: str
    origin_id: str | None
    product_id: str | None
    status: str
    gross: float
    net: float
    tax: float
    discount: float
    fulfillment_group_type: str | None


@dataclass(frozen=True)
class SalesOrder:
    id: str
    origin: str
    origin_id: str  # the external id
    channel_type: str
    status: str
    fulfillment_type: str
    store_id: str | None
    currency: str
    placed_at: str
    items: tuple[SalesOrderItem, ...]
    total: float
    tax: float
    raw: dict[str, Any] = _raw()


@dataclass(frozen=True)
class FulfillmentItem:
    item_id: str
    product_id: str
    status: str
    carrier: str | None
    tracking_code: str | None


@dataclass(frozen=True)
class FulfillmentRequest:
    fulfillment_request_id: str
    fulfillment_node_id: str
    service_level: str
    status: str
    created_at: str | None
    items: tuple[FulfillmentItem, ...]


@dataclass(frozen=True)
class ReturnItem:
    id: str
    product_id: str
    refund_amount: float | None
    item_condition: str | None


@dataclass(frozen=True)
class ReturnResult:
    id: str
    order_id: str | None
    returned_from: str | None
    total_refund_amount: float | None
    currency: str | None
    items: tuple[ReturnItem, ...]
    raw: dict[str, Any] = _raw()
