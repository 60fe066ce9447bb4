"""Click-and-collect: an online order with a pickup shipping method, fulfilled by a store.

The commerce platform takes the order; the pickup store is the store whose warehouse holds the order's
allocation (the platform allocated it from that store's stock). The order is handed to the store system for
that store (`injection_request`, one entry per unit, idempotent on the order's reference). When the store
hands the goods over, the online order is shipped for exactly the units handed over, without a shipping
notification to the customer (they have their goods), so it reaches its terminal state (`handover_plan`).
A cancelled online order cancels the store's order, which releases the store's allocation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pipelines.domain.flows.exceptions import HANDOVER_UNMATCHED, PICKUP_STORE_UNKNOWN, Problem
from pipelines.domain.flows.model import CommerceOrder, CommerceShipment, StoreOrder
from pipelines.domain.flows.ports import InjectionLine, InjectionRequest, ShipRequest

HANDED_OVER = frozenset({"shipped", "complete", "completed"})
MARKER_PREFIX = "pickup handover"


@dataclass(frozen=True)
class PickupStore:
    location_id: str  # the store system's fulfilment node
    store_id: str


def is_pickup(order: CommerceOrder, pickup_options: Collection[str]) -> bool:
    wanted = {o.casefold() for o in pickup_options}
    return bool(order.shipping_option) and str(order.shipping_option).casefold() in wanted


def pickup_store(order: CommerceOrder, stores_by_warehouse: Mapping[str, PickupStore]) -> PickupStore | Problem:
    stores = {stores_by_warehouse[w] for w in order.allocated_warehouses if w in stores_by_warehouse}
    if len(stores) == 1:
        return next(iter(stores))
    return Problem(PICKUP_STORE_UNKNOWN,
                   f"click-and-collect order {order.ref} is allocated to "
                   + (f"{len(stores)} stores" if stores else "no store's warehouse"),
                   {"order": order.ref, "allocated_warehouses": list(order.allocated_warehouses),
                    "shipping_option": order.shipping_option})


def injection_request(order: CommerceOrder, store: PickupStore, *, service_level: str,
                      placed_at: str) -> InjectionRequest:
    """The store system's copy of the order: one entry per unit, `<line id>:<unit>` as the item's own id."""
    lines = tuple(
        InjectionLine(external_item_id=f"{ln.line_id}:{k + 1}", sku=ln.sku, unit_price=ln.unit_price,
                      list_price=ln.unit_price, tax_rate=round(ln.tax_percent / 100.0, 4))
        for ln in order.lines for k in range(ln.quantity))
    return InjectionRequest(
        external_id=order.ref, location_id=store.location_id, store_id=store.store_id, currency=order.currency,
        placed_at=placed_at, email=order.email, service_level=service_level, lines=lines,
        paid_amount=round(sum(ln.unit_price for ln in lines), 2))


def line_of(external_item_id: str | None) -> str | None:
    """The commerce line an injected unit belongs to (`injection_request` named it `<line id>:<unit>`)."""
    if not external_item_id or ":" not in external_item_id:
        return None
    return external_item_id.rsplit(":", 1)[0]


@dataclass(frozen=True)
class HandoverPlan:
    ship: ShipRequest | None  # units handed over in store and not yet shipped online
    complete: tuple[CommerceShipment, ...]  # our shipments created but not completed (a crash in between)


def handover_plan(order: CommerceOrder, store_order: StoreOrder) -> HandoverPlan | Problem:
    handed: dict[str, int] = defaultdict(int)
    stray = []
    for item in store_order.items:
        if item.status not in HANDED_OVER:
            continue
        line_id = line_of(item.external_item_id)
        line = order.line(line_id) if line_id else None
        if line is None or line.sku != item.sku:
            stray.append({"item": item.item_id, "external_item_id": item.external_item_id, "sku": item.sku})
            continue
        handed[line.line_id] += 1
    if stray:
        return Problem(HANDOVER_UNMATCHED, f"store order {store_order.order_id} handed over {len(stray)} item(s) "
                       f"that are not lines of online order {order.ref}", {"order": order.ref, "items": stray})
    shipped: dict[str, int] = defaultdict(int)
    for s in order.shipments:
        for sl in s.lines:
            shipped[sl.order_line_id] += sl.quantity
    todo = tuple(sorted((lid, n - shipped[lid]) for lid, n in handed.items() if n > shipped[lid]))
    pending = tuple(s for s in order.shipments
                    if not s.completed and (s.message or "").startswith(MARKER_PREFIX))
    request = None
    if todo:
        units = sum(n for _, n in handed.items())
        request = ShipRequest(order_ref=order.ref, lines=todo, notify_customer=False,
                              marker=f"{MARKER_PREFIX} {store_order.order_id} ({units} unit(s) collected)")
    return HandoverPlan(request, pending)
