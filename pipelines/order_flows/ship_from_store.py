"""The ship-from-store flow (`ship_from_store`, key: the commerce order number) and its triggers.

Triggers: every Centra order event (the flow decides whether the order is ship-from-store: not a pickup, allocated
to a store's warehouse; `pipelines.domain.flows.ship_from_store`), and NewStore's `fulfillment_request.items_failed`
and `fulfillment_request.items_completed` (not of the pickup or till service levels) of an order this flow injected.
Those name NewStore's order id; its landed `order.created`/`order.opened` gives the external id
`<order>-sfs-<location>`, hence the order. When that event has not landed yet the work key is `ns:<order id>` and
the flow reads the external id from NewStore.

A run reads both platforms and the recorded re-routes, then converges, each step a no-op when already done:
the commerce allocation where the order must be (the last re-route's target, else where the platform allocated
it), the copies at earlier locations cancelled (which releases their allocations), and at a store: the final
stock check and the injection, or, once the store answered, the shipment with tracking (rejection: re-route).
A re-route is recorded (`ship_from_store_rerouted`) before the allocation moves, so a crash in between resumes it.
"""

from __future__ import annotations

from typing import Any, cast

from pipelines.connectors.errors import ConnectorError, TransientError
from pipelines.domain.flows import ship_from_store as sfs
from pipelines.domain.flows.click_collect import is_pickup
from pipelines.domain.flows.exceptions import STORE_ORDER_REJECTED, Problem
from pipelines.domain.flows.model import CommerceAllocation, CommerceOrder
from pipelines.domain.flows.ports import AllocatingCommerce, FulfillingStores
from pipelines.domain.newstore_events import IN_STORE_HANDOVER, payload_of
from pipelines.domain.timeutil import utc_text
from pipelines.order_flows.context import FlowContext, FlowResult
from pipelines.order_flows.flows import _done, _skip
from pipelines.order_flows.names import SHIP_FROM_STORE
from pipelines.store import order_flows as work
from pipelines.store.flow_reroutes import last_location, record_reroute, reroutes
from pipelines.store.inbox_orders import InboxOrders

ITEMS_FAILED = "fulfillment_request.items_failed"
ITEMS_COMPLETED = "fulfillment_request.items_completed"
NEWSTORE_EVENTS = (ITEMS_FAILED, ITEMS_COMPLETED)
NS_KEY = "ns:"


# -- triggers ------------------------------------------------------------------------------------------------

def newstore_triggers(engine: Any, pickup_service_level: str, inbox_id: int, name: str, when: str | None,
                      envelope: dict[str, Any]) -> list[work.Trigger]:
    p = payload_of(envelope)
    level = str(p.get("service_level") or "")
    if name not in NEWSTORE_EVENTS or not p.get("order_id"):
        return []
    if name == ITEMS_COMPLETED and level in (pickup_service_level, IN_STORE_HANDOVER):
        return []
    order_id = str(p["order_id"])
    opened = InboxOrders(engine).order(order_id)
    ext = opened.get("external_id") if opened else None
    if ext is not None:
        ref = sfs.order_ref_of(str(ext))
        return [work.Trigger(SHIP_FROM_STORE, ref, name, inbox_id, when)] if ref else []
    return [work.Trigger(SHIP_FROM_STORE, NS_KEY + order_id, name, inbox_id, when)]


# -- the flow ------------------------------------------------------------------------------------------------

def _blocked(problem: Problem, wrote: bool, **outcome: Any) -> FlowResult:
    return FlowResult("exception", {"action": "blocked", "problem": problem.kind.name, **outcome}, wrote=wrote,
                      problems=[problem], blocked=True)


class _Run:
    """One run of the flow for one order: the platforms, the estate's locations and what this run wrote."""

    def __init__(self, ctx: FlowContext, ref: str):
        self.ctx, self.ref = ctx, ref
        self.commerce = cast(AllocatingCommerce, ctx.commerce)
        self.stores = cast(FulfillingStores, ctx.stores)
        self.locations = tuple(ctx.settings.fulfilment_locations)
        self.by_id = {loc.location_id: loc for loc in self.locations}
        self.by_warehouse = {loc.warehouse_id: loc for loc in self.locations}
        self.wrote = False

    def read(self) -> tuple[CommerceOrder, tuple[CommerceAllocation, ...]]:
        found = self.commerce.order_allocations(self.ref)
        if found is None:
            raise TransientError(f"order {self.ref} is not (yet) readable in the commerce platform")
        return found

    def copy_at(self, loc: sfs.FulfilmentLocation) -> Any:
        return self.stores.order_by_external_id(sfs.external_id(self.ref, loc))

    def cancel_copies(self, locations: list[sfs.FulfilmentLocation], why: str) -> list[str]:
        cancelled = []
        for loc in locations:
            copy = self.copy_at(loc) if loc.kind == "store" else None
            if copy is not None and copy.status in ("open", "on_hold"):
                self.stores.cancel_order(copy.order_id, why)
                cancelled.append(copy.order_id)
                self.wrote = True
        return cancelled

    def confirm(self, order: CommerceOrder) -> None:
        """Confirm an order a store has taken on (the ERP guide's order: confirm, then ship)."""
        if not order.confirmed and order.status == "open":
            self.commerce.confirm(order.ref)
            self.wrote = True

    def has_stock(self, loc: sfs.FulfilmentLocation, need: dict[str, int]) -> dict[str, dict[str, int]]:
        skus = tuple(sorted(need))
        available = (self.stores.available(loc.node_id, skus) if loc.kind == "store"
                     else self.commerce.free_to_allocate(loc.warehouse_id, skus))
        return sfs.shortfall(need, available)


def ship_from_store(ctx: FlowContext, key: str) -> FlowResult:
    if key.startswith(NS_KEY):
        copy = ctx.stores.order(key[len(NS_KEY):])
        if copy is None:
            raise TransientError(f"store order {key[len(NS_KEY):]} is not (yet) readable in the store system")
        ref = sfs.order_ref_of(copy.external_id)
        return ship_from_store(ctx, ref) if ref else _skip("not_ship_from_store", store_order=copy.order_id)
    quick = ctx.commerce.order(key)  # shared with the pickup flow in this pass: skip the full read when not ours
    if quick is not None and is_pickup(quick, ctx.settings.pickup_shipping_options):
        return _skip("pickup", shipping_option=quick.shipping_option)
    recorded = reroutes(ctx.engine, SHIP_FROM_STORE, key)
    stores = {loc.warehouse_id for loc in ctx.settings.fulfilment_locations if loc.kind == "store"}
    if quick is not None and quick.status == "open" and not stores & set(quick.allocated_warehouses) \
            and not recorded:
        return _skip("not_ship_from_store", allocated_at=None)
    run = _Run(ctx, key)
    order, allocations = run.read()
    if is_pickup(order, ctx.settings.pickup_shipping_options):
        return _skip("pickup", shipping_option=order.shipping_option)
    if not run.locations:
        return _skip("no_locations_configured")
    log = [sfs.Reroute(str(r["from"]), str(r["to"]), str(r.get("reason"))) for r in recorded
           if r.get("from") in run.by_id and r.get("to") in run.by_id]
    allocated_at = sfs.location_of(allocations, run.by_warehouse)
    shipped_by_us = any((sh.message or "").startswith(sfs.MARKER_PREFIX) for sh in order.shipments)
    if order.status == "shipped" and shipped_by_us:
        return _done("already_shipped")
    if order.status == "cancelled":  # the platform released the allocation: where the copies may be is on record
        prior = last_location(ctx.engine, SHIP_FROM_STORE, key)
        seen = {x for r in log for x in (r.from_location, r.to_location)} | {
            x for x in (allocated_at.location_id if allocated_at else None, prior) if x}
        if not seen:
            return _skip("not_ship_from_store")
        cancelled = run.cancel_copies([run.by_id[x] for x in sorted(seen) if x in run.by_id],
                                      f"online order {key} cancelled")
        return _done("cancelled", run.wrote, store_orders=cancelled, location=prior or sorted(seen)[0])
    if not sfs.is_ship_from_store(order, ctx.settings.pickup_shipping_options, allocated_at, log):
        return _skip("not_ship_from_store", allocated_at=allocated_at.location_id if allocated_at else None)
    origin = run.by_id[log[0].from_location] if log else cast(sfs.FulfilmentLocation, allocated_at)
    target = run.by_id[log[-1].to_location] if log else origin
    earlier = [run.by_id[r.from_location] for r in log]
    if order.status == "shipped":
        return _done("already_shipped", location=target.location_id)
    for _ in range(len(run.locations) + 1):
        result = _converge(run, order, allocations, origin, target, earlier, log)
        if isinstance(result, FlowResult):
            return result
        target = result
        order, allocations = run.read()
    raise RuntimeError(f"ship-from-store order {key}: re-routing did not settle")


def _converge(run: _Run, order: CommerceOrder, allocations: tuple[CommerceAllocation, ...],
              origin: sfs.FulfilmentLocation, target: sfs.FulfilmentLocation, earlier: list[sfs.FulfilmentLocation],
              log: list[sfs.Reroute]) -> FlowResult | sfs.FulfilmentLocation:
    """Bring the platforms to `target`; returns the result, or the next location when `target` failed."""
    ctx, ref = run.ctx, run.ref
    move = sfs.allocation_move(order, allocations, target,
                               f"ship-from-store {ref}: to {target.location_id}" + (f" ({log[-1].reason})" if log else ""))
    if move is not None:
        run.commerce.move_allocation(move)
        run.wrote = True
    run.cancel_copies([loc for loc in earlier if loc.location_id != target.location_id],
                      f"online order {ref} re-routed to {target.location_id}")
    outcome = {"location": target.location_id, "reroutes": [f"{r.from_location}>{r.to_location}" for r in log]}
    if target.kind != "store":
        return _done("at_dc", run.wrote, **outcome)
    copy = run.copy_at(target)
    need = sfs.open_units(order)
    if copy is None:
        short = run.has_stock(target, need)
        if not short:
            request = sfs.injection_request(order, target, service_level=ctx.settings.ship_from_store_service_level,
                                            placed_at=utc_text(ctx.now()))
            try:
                injected = run.stores.inject_delivery(request, node_id=target.node_id,
                                                      address=run.commerce.delivery_address(ref))
            except TransientError:
                raise
            except ConnectorError as exc:  # the store system refused the order: integration fixes the data
                return _blocked(Problem(STORE_ORDER_REJECTED, f"{SHIP_FROM_STORE} {ref}: {exc}", {
                    "flow": SHIP_FROM_STORE, "key": ref, "store": target.location_id, "error": repr(exc)[:2000]}),
                    run.wrote, **outcome)
            run.confirm(order)
            return _done("injected", True, store_order=injected.order_id, units=len(request.lines), **outcome)
        reason, detail = sfs.STOCK_CHECK_FAILED, {"shortfall": short}
    else:
        state = sfs.store_state(run.stores.fulfilment_items(copy.order_id), target.node_id)
        if state.shipped or not state.failed:
            run.confirm(order)
        if state.shipped:
            return _ship(run, order, copy, state, outcome)
        all_cancelled = bool(copy.items) and all(i.status == "cancelled" for i in copy.items)
        if not state.failed and not all_cancelled:
            return _done("waiting_for_store", run.wrote, store_order=copy.order_id, **outcome)
        reason = sfs.STORE_REJECTED if state.failed else sfs.STORE_CANCELLED
        detail = {"store_order": copy.order_id, "rejected_items": sorted(i.item_id for i in state.failed)}
    tried = {r.from_location for r in log} | {target.location_id}
    candidates = sfs.fallback_order(origin, run.locations, ctx.settings.ship_from_store_fallback)
    nxt, looked = None, {}
    for cand in candidates:
        if cand.location_id in tried or cand.location_id == origin.location_id:
            continue
        short = run.has_stock(cand, need)
        if not short:
            nxt = cand
            break
        looked[cand.location_id] = short
    if nxt is None:
        run.cancel_copies([target], f"online order {ref}: store {target.location_id} could not fulfil it")
        return _blocked(sfs.unfulfillable(ref, target, reason, tried, {**detail, "candidates": looked}), run.wrote,
                        **outcome)
    problem = sfs.reroute_problem(ref, target, nxt, reason, {**detail, "seq": len(log) + 1, "origin":
                                                              origin.location_id})
    record_reroute(ctx.engine, SHIP_FROM_STORE, ref, problem)
    run.cancel_copies([target], f"online order {ref} re-routed to {nxt.location_id}")
    log.append(sfs.Reroute(target.location_id, nxt.location_id, reason))
    earlier.append(target)
    return nxt


def _ship(run: _Run, order: CommerceOrder, copy: Any, state: sfs.StoreState, outcome: dict[str, Any]) -> FlowResult:
    plan = sfs.shipment_plan(order, copy.order_id, state.shipped,
                             {i.item_id: i.external_item_id for i in copy.items})
    for shipment, carrier, tracking in plan.complete:
        run.commerce.complete_tracked(shipment.shipment_id, notify_customer=True, carrier=carrier,
                                      tracking_number=tracking)
        run.wrote = True
    for request, carrier, tracking in plan.ship:
        run.commerce.ship_tracked(request, carrier=carrier, tracking_number=tracking)
        run.wrote = True
    result = _done("shipped" if run.wrote else "already_shipped", run.wrote, store_order=copy.order_id,
                   units=sum(q for r, _, _ in plan.ship for _, q in r.lines),
                   tracking=sorted({i.tracking_code or "" for i in state.shipped}), **outcome)
    if state.failed:
        result.problems.append(sfs.split_problem(run.ref, run.by_id[outcome["location"]], len(state.shipped),
                                                 len(state.failed)))
    return result
