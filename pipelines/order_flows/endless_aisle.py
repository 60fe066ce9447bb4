"""The endless-aisle flow (key: the store system's order id): a store's order for home delivery becomes an order
in the commerce platform (decisions: `pipelines.domain.flows.endless_aisle`).

Trigger: the store system's `order.created` / `order.opened` of a store order whose items carry a delivery
service level (`newstore_events.newstore_triggers`). The flow reads the order from the landed event (the store
system publishes it whole), looks for the commerce order made for it before (a duplicate delivery, or a crash
between the platform's success and our commit: `CommercePlatform.order_by_external_id`), and only if there is
none creates it (`create_order`). A refusal is `commerce_order_rejected` (integration; the exceptions sensor
alerts on it); 5xx, 429 and timeouts are retried by the runner, which looks again before creating. Charged prices
off the store's price list are `price_off_pricelist` (ecommerce), reported each time the flow runs for the order
(one exception record per order). `endless_aisle_settings` adds the shipping map and the stores' markets and price
lists to the flow settings (`pipelines/defs/flows.flow_context`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.newstore.flows import store_sale_order
from pipelines.domain.flows import endless_aisle as ea
from pipelines.domain.flows.exceptions import COMMERCE_ORDER_REJECTED, Problem
from pipelines.domain.flows.model import StoreSaleOrder
from pipelines.domain.flows.ports import CommerceRejected
from pipelines.estate import Estate
from pipelines.order_flows.context import FlowContext, FlowResult, FlowSettings
from pipelines.order_flows.names import ENDLESS_AISLE
from pipelines.store.inbox_orders import InboxOrders


def store_terms(estate: Estate) -> dict[str, ea.StoreTerms]:
    """Each store's commerce market and price list, from the estate file (stores without them are left out)."""
    return {loc.id: ea.StoreTerms(market_id=str(loc.centra_market_id), pricelist_id=str(loc.centra_pricelist_id),
                                  country=loc.country, currency=loc.currency)
            for loc in estate.stores if loc.centra_market_id is not None and loc.centra_pricelist_id is not None}


def endless_aisle_settings(settings: FlowSettings, estate: Estate, shipping_map: str | None = None) -> FlowSettings:
    """`settings` with the stores' terms and, when given, the shipping map (`SERVICE=option,...`)."""
    extra: dict[str, Any] = {"store_terms": store_terms(estate)}
    if shipping_map:
        extra["shipping_map"] = ea.parse_shipping_map(shipping_map)
    return replace(settings, **extra)


def store_sale(engine: Engine, order_id: str) -> StoreSaleOrder | None:
    """The store order as its landed `order.opened` (else `order.created`) event carries it."""
    payload = InboxOrders(engine).order(order_id)
    return store_sale_order(payload) if payload else None


def _outcome(action: str, **kw: Any) -> dict[str, Any]:
    return {"action": action, **{k: v for k, v in kw.items() if v is not None}}


def endless_aisle(ctx: FlowContext, order_id: str) -> FlowResult:
    order = store_sale(ctx.engine, order_id)
    if order is None:
        return FlowResult("skipped", _outcome("waiting_for_order_event"))
    level = ctx.settings.pickup_service_level
    if not ea.is_endless_aisle(order, level):
        return FlowResult("skipped", _outcome("not_endless_aisle", store=order.store_id))
    terms = ctx.settings.store_terms.get(order.store_id or "")
    if terms is not None:
        existing = ctx.commerce.order_by_external_id(order.order_id, terms.market_id)
        if existing is not None:
            return FlowResult("done", _outcome("created_already", commerce_order=existing.ref, store=order.store_id),
                              problems=ea.price_problems(order, existing, level))
    request = ea.order_request(order, ctx.settings.store_terms, ctx.settings.shipping_map, level)
    if isinstance(request, Problem):
        return FlowResult("exception", _outcome("blocked", problem=request.kind.name, store=order.store_id),
                          problems=[request], blocked=True)
    try:
        created = ctx.commerce.create_order(request)
    except CommerceRejected as exc:
        problem = Problem(COMMERCE_ORDER_REJECTED, f"endless-aisle order {order_id} of store {order.store_id}: {exc}",
                          {"order": order_id, "store": order.store_id, **exc.evidence})
        return FlowResult("exception", _outcome("blocked", problem=problem.kind.name, store=order.store_id),
                          problems=[problem], blocked=True)
    return FlowResult("done", _outcome("created", commerce_order=created.ref, store=order.store_id,
                                       market=created.market_id, pricelist=created.pricelist_id,
                                       shipping_option=created.shipping_option,
                                       units=sum(ln.quantity for ln in request.lines)),
                      wrote=True, problems=ea.price_problems(order, created, level))


__all__ = ["ENDLESS_AISLE", "endless_aisle", "endless_aisle_settings", "store_sale", "store_terms"]
