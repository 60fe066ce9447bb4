"""The platform interfaces the order flows are written against.

A commerce platform (Centra today; commercetools next) and a store system (NewStore) each implement one of
these in `pipelines/connectors/<platform>/flows.py`. Every write is idempotent on the key the flow passes
(`external_id`, the shipment `marker`): calling it again after a crash between the platform's success and our
commit finds the earlier write instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipelines.domain.flows.model import (
    CommerceAddress,
    CommerceAllocation,
    CommerceOrder,
    CommerceReturn,
    CommerceShipment,
    StoreFulfilmentItem,
    StoreOrder,
)


@dataclass(frozen=True)
class ReturnRequest:
    order_ref: str
    shipment_id: str
    lines: tuple[tuple[str, int], ...]  # (shipment line id, quantity)
    external_id: str  # the store system's return id: finds an earlier write
    comment: str
    returned_at: str | None = None


@dataclass(frozen=True)
class ShipRequest:
    order_ref: str
    lines: tuple[tuple[str, int], ...]  # (order line id, quantity)
    marker: str  # kept on the shipment: finds an earlier write
    notify_customer: bool
    shipped_at: str | None = None


@dataclass(frozen=True)
class InjectionLine:
    external_item_id: str
    sku: str
    unit_price: float  # tax included, after discounts
    list_price: float
    tax_rate: float  # 0.25


@dataclass(frozen=True)
class InjectionRequest:
    """An online order handed to a store system for a store to fulfil (one entry per unit)."""

    external_id: str
    location_id: str  # the store (fulfilment node) that fulfils it
    store_id: str
    currency: str
    placed_at: str
    email: str | None
    service_level: str
    lines: tuple[InjectionLine, ...]
    paid_amount: float


@dataclass(frozen=True)
class OrderLineRequest:
    sku: str
    quantity: int
    unit_price: float  # charged per unit, tax included (the price list's price is the platform's to know)


@dataclass(frozen=True)
class OrderAddress:
    first_name: str | None
    last_name: str | None
    address1: str | None
    address2: str | None
    city: str | None
    zip_code: str | None
    state: str | None
    country: str  # ISO-3166 alpha-2
    email: str
    phone: str | None = None


@dataclass(frozen=True)
class CreateOrderRequest:
    """An order taken elsewhere (an endless-aisle sale in a store), created in the commerce platform with a guest
    customer, already paid."""

    external_id: str  # the store system's order id: finds an earlier write
    market_id: str
    pricelist_id: str
    shipping_option: str  # the platform's shipping option (Centra: its URI), from the explicit shipping map
    address: OrderAddress
    lines: tuple[OrderLineRequest, ...]
    currency: str
    paid_amount: float
    placed_at: str | None = None
    payment_reference: str | None = None
    # A registered customer (created by the e-mail when none exists) instead of a guest: for tenants whose order
    # handling requires a customer account. Centra: the Order API's `customerRegister`.
    register_customer: bool = False


class CommerceRejected(Exception):
    """The commerce platform refused a create (nothing was created); `evidence` holds its answer."""

    def __init__(self, message: str, evidence: dict | None = None):
        super().__init__(message)
        self.evidence = evidence or {}


class CommercePlatform(Protocol):
    def order(self, ref: str) -> CommerceOrder | None: ...

    def confirm(self, ref: str) -> None: ...

    def create_return(self, request: ReturnRequest) -> CommerceReturn: ...

    def refund_return(self, return_id: str) -> CommerceReturn: ...

    def ship(self, request: ShipRequest) -> CommerceShipment: ...

    def complete_shipment(self, shipment_id: str, *, notify_customer: bool,
                          shipped_at: str | None = None) -> CommerceShipment: ...

    def order_by_external_id(self, external_id: str, market_id: str) -> CommerceOrder | None: ...

    def create_order(self, request: CreateOrderRequest) -> CommerceOrder: ...


class StoreSystem(Protocol):
    def inject_order(self, request: InjectionRequest) -> StoreOrder: ...

    def order(self, order_id: str) -> StoreOrder | None: ...

    def order_by_external_id(self, external_id: str) -> StoreOrder | None: ...

    def cancel_order(self, order_id: str, reason: str) -> None: ...


@dataclass(frozen=True)
class AllocationMove:
    """Move an order's allocation: release it in `from_warehouses`, allocate `lines` in `to_warehouse`."""

    order_ref: str
    from_warehouses: tuple[str, ...]
    to_warehouse: str
    lines: tuple[tuple[str, int], ...]  # (order line id, units to allocate in to_warehouse)
    comment: str


class AllocatingCommerce(CommercePlatform, Protocol):
    """A commerce platform that can move allocations between warehouses and ship with tracking (ship-from-store)."""

    def order_allocations(self, ref: str) -> tuple[CommerceOrder, tuple[CommerceAllocation, ...]] | None: ...

    def free_to_allocate(self, warehouse_id: str, skus: tuple[str, ...]) -> dict[str, int]: ...

    def move_allocation(self, move: AllocationMove) -> None: ...

    def delivery_address(self, ref: str) -> CommerceAddress | None: ...

    def ship_tracked(self, request: ShipRequest, *, carrier: str | None,
                     tracking_number: str | None) -> CommerceShipment: ...

    def complete_tracked(self, shipment_id: str, *, notify_customer: bool, carrier: str | None,
                         tracking_number: str | None) -> CommerceShipment: ...


class FulfillingStores(StoreSystem, Protocol):
    """A store system that answers live availability and fulfils delivery orders at a pinned node."""

    def available(self, node_id: str, skus: tuple[str, ...]) -> dict[str, int]: ...

    def fulfilment_items(self, order_id: str) -> tuple[StoreFulfilmentItem, ...]: ...

    def inject_delivery(self, request: InjectionRequest, *, node_id: str,
                        address: CommerceAddress | None) -> StoreOrder: ...
