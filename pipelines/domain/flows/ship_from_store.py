"""Ship-from-store: an online delivery order fulfilled by a store, with a final stock check and re-routing.

Which orders: an order of the commerce platform that is not a click-and-collect pickup (`click_collect.is_pickup`)
and whose allocation the platform put on a store's warehouse (its allocation rule lists store warehouses; the
estate maps each warehouse to its location). An order allocated only to the DC is not ship-from-store: the DC
ships it. The order is fulfilled by one location: the one holding most of its allocated units (`location_of`).

The final check: before the order is handed to the store, the store's live available-to-promise in the store
system must cover every open unit (`shortfall`). If it does, the order is injected into the store system pinned to
that store's fulfilment node with a shipping service level (`injection_request`; its own external id per location,
`external_id`, so that a re-route can inject the same order elsewhere). If the check fails, or the store rejects
items, the order is re-routed to the next location of the configured fallback order of the store it was first
assigned to (`fallback_order`: an explicit list per store, else the other stores of the same country in the
estate's order, then the DC), skipping locations already tried and those without stock. The
commerce allocation moves with it (`allocation_move`); each re-route is recorded (`ship_from_store_rerouted`,
retail operations) before it is carried out, so the recorded re-routes are the flow's memory: the last one names
the location the order must end up at. No location with stock: `ship_from_store_unfulfillable` (ecommerce).

When the store ships (its fulfilment items `shipped` with carrier and tracking), the online order is shipped for
exactly those units with the tracking, and the customer is notified (`shipment_plan`): one shipment per tracking
code, found again by its marker.
A cancelled online order cancels the store system's copies (which releases the store's allocation). Not handled
automatically: a store that ships part of an order and rejects the rest (`ship_from_store_split`), and an order
split over several locations (it is consolidated at the one holding most of its units).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pipelines.domain.flows.click_collect import PickupStore, is_pickup, line_of
from pipelines.domain.flows.click_collect import injection_request as _injection
from pipelines.domain.flows.exceptions import (
    SHIP_FROM_STORE_REROUTED,
    SHIP_FROM_STORE_SPLIT,
    SHIP_FROM_STORE_UNFULFILLABLE,
    Problem,
)
from pipelines.domain.flows.model import (
    CommerceAllocation,
    CommerceOrder,
    CommerceShipment,
    StoreFulfilmentItem,
)
from pipelines.domain.flows.ports import AllocationMove, InjectionRequest, ShipRequest
from pipelines.estate.model import Location

SFS = "-sfs-"  # external id of the store system's copy: "<order ref>-sfs-<location id>"
MARKER_PREFIX = "ship-from-store"
STOCK_CHECK_FAILED = "stock_check_failed"  # the store's live ATP does not cover the order
STORE_REJECTED = "store_rejected"  # the store rejected items of the order (fulfilment items failed)
STORE_CANCELLED = "store_order_cancelled"  # the store system's copy was cancelled outside this flow


@dataclass(frozen=True)
class FulfilmentLocation:
    """A stock-holding location as both platforms know it."""

    location_id: str  # the estate's id (the store system's store id)
    node_id: str  # the store system's fulfilment node
    warehouse_id: str  # the commerce platform's warehouse
    kind: str  # store | dc
    country: str


@dataclass(frozen=True)
class Reroute:
    """One recorded re-route (the flow's memory, oldest first)."""

    from_location: str
    to_location: str
    reason: str


def external_id(order_ref: str, location: FulfilmentLocation) -> str:
    return f"{order_ref}{SFS}{location.location_id}"


def order_ref_of(store_external_id: str | None) -> str | None:
    """The commerce order a store-system order belongs to, if this flow injected it."""
    if not store_external_id or SFS not in store_external_id:
        return None
    ref = store_external_id.split(SFS, 1)[0]
    return ref if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", ref) else None  # a number (Centra), an id (commercetools)


def open_units(order: CommerceOrder) -> dict[str, int]:
    """SKU -> units still to ship."""
    need: dict[str, int] = defaultdict(int)
    for ln in order.lines:
        if ln.quantity - ln.shipped_quantity > 0:
            need[ln.sku] += ln.quantity - ln.shipped_quantity
    return dict(need)


def by_warehouse_units(allocations: Iterable[CommerceAllocation]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for a in allocations:
        out[a.warehouse_id] += a.quantity
    return {w: n for w, n in out.items() if n > 0}


def location_of(allocations: Iterable[CommerceAllocation],
                by_warehouse: Mapping[str, FulfilmentLocation]) -> FulfilmentLocation | None:
    """The location holding most of the order's allocated units; ties go to a store, then the lower location
    id. None when nothing is allocated to a known location."""
    known = [(n, by_warehouse[w]) for w, n in by_warehouse_units(allocations).items() if w in by_warehouse]
    if not known:
        return None
    return sorted(known, key=lambda x: (-x[0], x[1].kind != "store", x[1].location_id))[0][1]


def is_ship_from_store(order: CommerceOrder, pickup_options: Collection[str], location: FulfilmentLocation | None,
                       reroutes: Iterable[Reroute]) -> bool:
    if is_pickup(order, pickup_options):
        return False
    return bool(list(reroutes)) or (location is not None and location.kind == "store")


def fallback_order(origin: FulfilmentLocation, locations: Iterable[FulfilmentLocation],
                   explicit: Mapping[str, tuple[str, ...]]) -> tuple[FulfilmentLocation, ...]:
    """Where an order assigned to `origin` goes next, in order: `explicit[origin]` when configured, else the other
    stores of the origin's country (the estate's order: it has no coordinates to rank by distance), then the DC."""
    locations = tuple(locations)
    by_id = {loc.location_id: loc for loc in locations}
    if origin.location_id in explicit:
        return tuple(by_id[i] for i in explicit[origin.location_id] if i in by_id and i != origin.location_id)
    same = [loc for loc in locations if loc.kind == "store" and loc.country == origin.country
            and loc.location_id != origin.location_id]
    return (*same, *(loc for loc in locations if loc.kind == "dc"))


def parse_fallback(text: str | None) -> dict[str, tuple[str, ...]]:
    """`STORE=LOC,LOC;STORE=...` (the PIPELINES_FLOW_SFS_FALLBACK setting) -> store id -> location ids."""
    out: dict[str, tuple[str, ...]] = {}
    for part in (text or "").split(";"):
        store, sep, rest = part.partition("=")
        if sep and store.strip():
            out[store.strip()] = tuple(x.strip() for x in rest.split(",") if x.strip())
    return out


def locations_of(locations: Iterable[Location]) -> tuple[FulfilmentLocation, ...]:
    """The estate's locations as the flow sees them (both platforms' ids)."""
    return tuple(FulfilmentLocation(location_id=loc.id, node_id=loc.newstore_node_id,
                                    warehouse_id=str(loc.centra_warehouse_id), kind=loc.kind, country=loc.country)
                 for loc in locations)


def shortfall(need: Mapping[str, int], available: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """SKU -> {needed, available} for every SKU the location cannot cover (empty: it can)."""
    return {sku: {"needed": n, "available": int(available.get(sku, 0))}
            for sku, n in sorted(need.items()) if int(available.get(sku, 0)) < n}


def reroute_problem(order_ref: str, src: FulfilmentLocation, dst: FulfilmentLocation, reason: str,
                    detail: Mapping[str, object]) -> Problem:
    return Problem(SHIP_FROM_STORE_REROUTED,
                   f"ship-from-store order {order_ref} re-routed from {src.location_id} to {dst.location_id}: {reason}",
                   {"order": order_ref, "from": src.location_id, "to": dst.location_id, "to_kind": dst.kind,
                    "reason": reason, **detail})


def unfulfillable(order_ref: str, current: FulfilmentLocation, reason: str, tried: Iterable[str],
                  detail: Mapping[str, object]) -> Problem:
    return Problem(SHIP_FROM_STORE_UNFULFILLABLE,
                   f"ship-from-store order {order_ref} cannot be fulfilled: {current.location_id} failed ({reason}) "
                   "and no location of its fallback order has the stock",
                   {"order": order_ref, "location": current.location_id, "reason": reason,
                    "tried": sorted(set(tried)), **detail})


def split_problem(order_ref: str, location: FulfilmentLocation, shipped: int, failed: int) -> Problem:
    return Problem(SHIP_FROM_STORE_SPLIT,
                   f"store {location.location_id} shipped {shipped} unit(s) of ship-from-store order {order_ref} and "
                   f"rejected {failed}: the rest was not re-routed",
                   {"order": order_ref, "location": location.location_id, "shipped": shipped, "rejected": failed})


def allocation_move(order: CommerceOrder, allocations: Iterable[CommerceAllocation], target: FulfilmentLocation,
                    comment: str) -> AllocationMove | None:
    """What to change so that every open unit is allocated in the target's warehouse (None: already so)."""
    allocations = tuple(allocations)
    line_allocations: dict[str, int] = defaultdict(int)
    for a in allocations:
        if a.warehouse_id == target.warehouse_id:
            line_allocations[a.line_id] += a.quantity
    elsewhere = tuple(sorted(w for w in by_warehouse_units(allocations) if w != target.warehouse_id))
    lines = tuple(sorted(
        (ln.line_id, ln.quantity - ln.shipped_quantity - int(line_allocations.get(ln.line_id, 0)))
        for ln in order.lines if ln.quantity - ln.shipped_quantity - int(line_allocations.get(ln.line_id, 0)) > 0))
    if not elsewhere and not lines:
        return None
    return AllocationMove(order_ref=order.ref, from_warehouses=elsewhere, to_warehouse=target.warehouse_id,
                          lines=lines, comment=comment)


def injection_request(order: CommerceOrder, location: FulfilmentLocation, *, service_level: str,
                      placed_at: str) -> InjectionRequest:
    """The store system's copy for `location` (one entry per open unit), under this location's external id."""
    base = _injection(order, PickupStore(location_id=location.node_id, store_id=location.location_id),
                      service_level=service_level, placed_at=placed_at)
    return InjectionRequest(
        external_id=external_id(order.ref, location), location_id=base.location_id, store_id=base.store_id,
        currency=base.currency, placed_at=base.placed_at, email=base.email, service_level=base.service_level,
        lines=base.lines, paid_amount=base.paid_amount)


@dataclass(frozen=True)
class StoreState:
    """The store's handling of its copy of the order, from its fulfilment items at that store's node."""

    shipped: tuple[StoreFulfilmentItem, ...]
    failed: tuple[StoreFulfilmentItem, ...]


def store_state(items: Iterable[StoreFulfilmentItem], node_id: str) -> StoreState:
    at_node = [i for i in items if i.node_id == node_id]
    return StoreState(shipped=tuple(i for i in at_node if i.status == "shipped"),
                      failed=tuple(i for i in at_node if i.status == "rejected"))


@dataclass(frozen=True)
class ShipmentPlan:
    ship: tuple[tuple[ShipRequest, str | None, str | None], ...]  # (request, carrier, tracking) to create
    complete: tuple[tuple[CommerceShipment, str | None, str | None], ...]  # ours, created but not completed


def marker(store_order_id: str, tracking: str | None) -> str:
    return f"{MARKER_PREFIX} {store_order_id} tracking {tracking or '-'}"


def shipment_plan(order: CommerceOrder, store_order_id: str, shipped: Iterable[StoreFulfilmentItem],
                  external_item_of: Mapping[str, str | None]) -> ShipmentPlan:
    """Ship online what the store shipped: one shipment per tracking code, with the units of that code not yet
    shipped online (capped by what the line still has open)."""
    groups: dict[str | None, list[StoreFulfilmentItem]] = defaultdict(list)
    for item in shipped:
        groups[item.tracking_code].append(item)
    ours = {s.message: s for s in order.shipments if (s.message or "").startswith(MARKER_PREFIX)}
    open_by_line = {ln.line_id: ln.quantity - ln.shipped_quantity for ln in order.lines}
    for s in order.shipments:  # created but not completed: their units are taken already
        if not s.completed:
            for sl in s.lines:
                open_by_line[sl.order_line_id] = open_by_line.get(sl.order_line_id, 0) - sl.quantity
    ship, complete = [], []
    for tracking, items in sorted(groups.items(), key=lambda kv: str(kv[0])):
        carrier = next((i.carrier for i in items if i.carrier), None)
        mark = marker(store_order_id, tracking)
        if mark in ours:
            if not ours[mark].completed:
                complete.append((ours[mark], carrier, tracking))
            continue
        units: dict[str, int] = defaultdict(int)
        for item in items:
            line_id = line_of(external_item_of.get(item.item_id))
            if line_id is not None and open_by_line.get(line_id, 0) - units[line_id] > 0:
                units[line_id] += 1
        for lid, n in units.items():
            open_by_line[lid] -= n
        if units:
            ship.append((ShipRequest(order_ref=order.ref, lines=tuple(sorted(units.items())), marker=mark,
                                     notify_customer=True), carrier, tracking))
    return ShipmentPlan(tuple(ship), tuple(complete))
