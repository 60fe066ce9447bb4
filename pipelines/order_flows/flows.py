"""The order flows, one function each: read both platforms' current state, decide (pure), write.

Each returns a `FlowResult`: `done` (the platforms are as the flow wants them; `wrote` when this run changed
one), `skipped` (not this flow's business, or its triggering event has not landed yet: that event re-runs it),
or `blocked` with the problem that stops it (an exception record for its owner team).
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.connectors.errors import TransientError
from pipelines.domain.flows import click_collect as cc
from pipelines.domain.flows.click_collect import PickupStore
from pipelines.domain.flows.exceptions import (
    COMMERCE_WRITE_REJECTED,
    HANDOVER_UNMATCHED,
    PICKUP_UNCOLLECTED,
    RETURN_ORDER_NOT_FOUND,
    RETURN_WITHOUT_ORDER_REF,
    STORE_ORDER_REJECTED,
    Problem,
)
from pipelines.domain.flows.model import CommerceOrder
from pipelines.domain.flows.returns import is_ours, plan_return, refund_problems
from pipelines.domain.flows.ship_from_store import order_ref_of
from pipelines.domain.timeutil import utc_text
from pipelines.order_flows.context import FlowContext, FlowResult
from pipelines.order_flows.names import PICKUP_HANDOVER, PICKUP_ORDER, STORE_RETURN

__all__ = ["PICKUP_HANDOVER", "PICKUP_ORDER", "STORE_RETURN", "PickupStore", "pickup_handover", "pickup_order",
           "store_return"]


def _done(action: str, wrote: bool = False, **outcome: Any) -> FlowResult:
    return FlowResult("done", {"action": action, **outcome}, wrote=wrote)


def _skip(action: str, **outcome: Any) -> FlowResult:
    return FlowResult("skipped", {"action": action, **outcome})


def _blocked(problem: Problem, **outcome: Any) -> FlowResult:
    return FlowResult("exception", {"action": "blocked", "problem": problem.kind.name, **outcome},
                      problems=[problem], blocked=True)


def rejected(flow: str, key: str, exc: Exception) -> FlowResult:
    """A write or read the platform refused, or that kept failing: an exception for integration."""
    kind = STORE_ORDER_REJECTED if flow == PICKUP_ORDER else COMMERCE_WRITE_REJECTED
    return _blocked(Problem(kind, f"{flow} {key}: {exc}", {"flow": flow, "key": key, "error": repr(exc)[:2000]}))


def outcome_of(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row.get("outcome") or "{}")
    except ValueError:
        return {}


def uncollected(order_ref: str, outcome: dict[str, Any], after_h: float) -> Problem:
    return Problem(PICKUP_UNCOLLECTED, f"click-and-collect order {order_ref} not collected in store "
                   f"{outcome.get('store')} within {after_h:g} h", {"order": order_ref, **outcome})


# -- in-store return of an online order -------------------------------------------------------------------------

def store_return(ctx: FlowContext, return_id: str) -> FlowResult:
    ret = ctx.evidence.store_return(return_id)
    if ret is None:
        return _skip("waiting_for_return_event")
    ref = ret.external_order_ref
    if ret.order_id:  # the store system knows the order: a till sale's return is not this flow's business
        if ctx.evidence.is_store_sale(ret.order_id):
            return _skip("store_sale_return")
        found = ctx.stores.order(ret.order_id)
        if found is not None and found.channel_type == "store":
            return _skip("store_sale_return")
        if ref is None and found is not None and found.external_id not in (None, "", "None"):
            ref = order_ref_of(found.external_id) or found.external_id
    ref = order_ref_of(ref) or ref if ref else None
    if ref is None:
        return _blocked(Problem(RETURN_WITHOUT_ORDER_REF,
                                f"store return {return_id} at {ret.location_id} names no online order",
                                {"store_return": return_id, "location": ret.location_id,
                                 "refunded": ret.total_refund_amount, "currency": ret.currency,
                                 "items": [i.__dict__ for i in ret.items]}))
    order = ctx.commerce.order(ref)
    if order is None:
        return _blocked(Problem(RETURN_ORDER_NOT_FOUND, f"store return {return_id} names order {ref}, which the "
                                "commerce platform does not know", {"store_return": return_id, "order": ref}))
    plan = plan_return(ret, order)
    if isinstance(plan, Problem):
        return _blocked(plan, order=ref)
    wrote = False
    created = [ctx.commerce.create_return(req) for req in plan.to_create]
    wrote = bool(created)
    ours = {r.return_id: r for r in (*plan.ours, *created)}
    for rid, r in list(ours.items()):
        if not r.refunded:
            ours[rid] = ctx.commerce.refund_return(rid)
            wrote = True
    mine = tuple(r for r in ours.values() if is_ours(return_id, r.external_id))
    problems = refund_problems(ret, mine, ctx.evidence.store_refund(return_id), ref)
    result = _done("returned" if wrote else "already_returned", wrote, order=ref,
                   commerce_returns=sorted(ours), refund=round(sum(r.grand_total for r in mine), 2),
                   problems=[p.kind.name for p in problems])
    result.problems.extend(problems)
    return result


# -- click-and-collect -----------------------------------------------------------------------------------------

def pickup_order(ctx: FlowContext, order_ref: str) -> FlowResult:
    order = ctx.commerce.order(order_ref)
    if order is None:
        raise TransientError(f"order {order_ref} is not (yet) readable in the commerce platform")
    if not cc.is_pickup(order, ctx.settings.pickup_shipping_options):
        return _skip("not_pickup", shipping_option=order.shipping_option)
    existing = ctx.stores.order_by_external_id(order_ref)
    if order.status == "cancelled":
        if existing is not None and existing.status not in ("cancelled", "closed"):
            ctx.stores.cancel_order(existing.order_id, f"online order {order_ref} cancelled")
            return _done("cancelled", True, store_order=existing.order_id)
        return _done("cancelled_already", store_order=existing.order_id if existing else None)
    if existing is not None or order.status == "shipped":
        confirmed = _confirm(ctx, order)
        return _done("injected" if existing else "shipped", confirmed,
                     store_order=existing.order_id if existing else None,
                     store=_store_of(ctx, order))
    store = cc.pickup_store(order, ctx.pickup_stores)
    if isinstance(store, Problem):
        return _blocked(store)
    request = cc.injection_request(order, store, service_level=ctx.settings.pickup_service_level,
                                   placed_at=utc_text(ctx.now()))
    injected = ctx.stores.inject_order(request)
    _confirm(ctx, order)
    return _done("injected", True, store_order=injected.order_id, store=store.location_id, units=len(request.lines))


def _confirm(ctx: FlowContext, order: CommerceOrder) -> bool:
    """Confirm an order the store has taken on (the ERP guide's order: confirm, then ship)."""
    if order.confirmed or order.status != "open":
        return False
    ctx.commerce.confirm(order.ref)
    return True


def _store_of(ctx: FlowContext, order: CommerceOrder) -> str | None:
    store = cc.pickup_store(order, ctx.pickup_stores)
    return None if isinstance(store, Problem) else store.location_id


def pickup_handover(ctx: FlowContext, store_order_id: str) -> FlowResult:
    store_order = ctx.stores.order(store_order_id)
    if store_order is None:
        raise TransientError(f"store order {store_order_id} is not (yet) readable in the store system")
    if not store_order.external_id or store_order.external_id == "None":
        return _skip("not_online_order")
    order = ctx.commerce.order(store_order.external_id)
    if order is None:
        return _blocked(Problem(HANDOVER_UNMATCHED, f"store order {store_order_id} hands over online order "
                                f"{store_order.external_id}, which the commerce platform does not know",
                                {"store_order": store_order_id, "order": store_order.external_id}))
    if not cc.is_pickup(order, ctx.settings.pickup_shipping_options):
        return _skip("not_pickup", order=order.ref)
    plan = cc.handover_plan(order, store_order)
    if isinstance(plan, Problem):
        return _blocked(plan, order=order.ref)
    wrote = _confirm(ctx, order)
    for shipment in plan.complete:
        ctx.commerce.complete_shipment(shipment.shipment_id, notify_customer=False)
        wrote = True
    if plan.ship is not None:
        ctx.commerce.ship(plan.ship)
        wrote = True
    return _done("shipped" if wrote else "already_shipped", wrote, order=order.ref,
                 units=sum(q for _, q in plan.ship.lines) if plan.ship else 0)
