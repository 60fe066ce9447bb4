"""Endless aisle: an order a store takes for goods it does not have, delivered to the customer's home, becomes an
order in the commerce platform (which holds the stock and ships it).

Which orders: store orders (`channel_type` store) with at least one item whose service level is a delivery one:
neither the till's `IN_STORE_HANDOVER` nor the pickup service level (`is_endless_aisle`). Only those items go to
the commerce platform; what the customer took home at the till stays a store sale.

The commerce order (`order_request`): a guest customer from the order's e-mail and delivery address (the
commerce platform requires both; without them the order is `endless_aisle_incomplete`), the store's market and
price list from the estate file (`StoreTerms`; a store without them is `store_market_unmapped`), the delivery
service level mapped to the platform's shipping option through the explicit shipping map (an unmapped level, or
several in one order, is `shipping_option_unmapped`: never a guess), and the lines at the prices the store
charged (units of one SKU at one price are one line). Charged prices that differ from the price list are
reported after creation (`price_problems`, `price_off_pricelist`); the order is created at the charged price.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.domain.flows.exceptions import (
    ENDLESS_AISLE_INCOMPLETE,
    PRICE_OFF_PRICELIST,
    SHIPPING_OPTION_UNMAPPED,
    STORE_MARKET_UNMAPPED,
    Problem,
)
from pipelines.domain.flows.model import CommerceOrder, StoreSaleItem, StoreSaleOrder
from pipelines.domain.flows.ports import CreateOrderRequest, OrderAddress, OrderLineRequest
from pipelines.domain.newstore_events import IN_STORE_HANDOVER

PRICE_TOLERANCE = 0.005  # money is kept to the cent
#: The default shipping map (service level -> the commerce platform's shipping option). NewStore leaves service
#: level names to the tenant and Centra its shipping options to the merchant: set PIPELINES_FLOW_SHIPPING_MAP.
DEFAULT_SHIPPING_MAP = {"STANDARD": "standard", "EXPRESS": "express"}


@dataclass(frozen=True)
class StoreTerms:
    """A store's commerce market and price list (the estate file)."""

    market_id: str
    pricelist_id: str
    country: str
    currency: str


def parse_shipping_map(text: str | None) -> dict[str, str]:
    """`SERVICE=option,SERVICE2=option2` -> {service level: option}; ValueError on a malformed pair."""
    out: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        level, sep, option = pair.partition("=")
        if not sep or not level.strip() or not option.strip():
            raise ValueError(f"shipping map entry {pair.strip()!r} is not SERVICE_LEVEL=option")
        out[level.strip()] = option.strip()
    return out


def delivery_items(order: StoreSaleOrder, pickup_service_level: str) -> tuple[StoreSaleItem, ...]:
    excluded = {IN_STORE_HANDOVER.casefold(), pickup_service_level.casefold()}
    return tuple(i for i in order.items
                 if i.service_level and i.service_level.casefold() not in excluded and i.status != "cancelled")


def is_endless_aisle(order: StoreSaleOrder, pickup_service_level: str) -> bool:
    return order.channel_type == "store" and bool(delivery_items(order, pickup_service_level))


def order_request(order: StoreSaleOrder, terms: Mapping[str, StoreTerms], shipping_map: Mapping[str, str],
                  pickup_service_level: str) -> CreateOrderRequest | Problem:
    items = delivery_items(order, pickup_service_level)
    evidence = {"order": order.order_id, "store": order.store_id}
    store = terms.get(order.store_id or "")
    if store is None:
        return Problem(STORE_MARKET_UNMAPPED, f"store {order.store_id} took endless-aisle order {order.order_id} but "
                       "has no commerce market and price list in the estate file", evidence)
    levels = sorted({i.service_level for i in items})
    options = {lvl: shipping_map.get(lvl) for lvl in levels}
    if len(levels) != 1 or options[levels[0]] is None:
        unmapped = [lvl for lvl, opt in options.items() if opt is None]
        why = (f"service level(s) {', '.join(unmapped)} not in the shipping map" if unmapped
               else f"{len(levels)} service levels in one order")
        return Problem(SHIPPING_OPTION_UNMAPPED, f"endless-aisle order {order.order_id}: {why}",
                       {**evidence, "service_levels": levels, "shipping_map": dict(shipping_map)})
    missing = _missing(order)
    if missing:
        return Problem(ENDLESS_AISLE_INCOMPLETE, f"endless-aisle order {order.order_id} lacks {', '.join(missing)}",
                       {**evidence, "missing": missing})
    addr = order.shipping_address or {}
    units = Counter((i.sku, round(i.paid_price, 2)) for i in items)
    lines = tuple(OrderLineRequest(sku=sku, quantity=n, unit_price=price)
                  for (sku, price), n in sorted(units.items()))
    return CreateOrderRequest(
        external_id=order.order_id, market_id=store.market_id, pricelist_id=store.pricelist_id,
        shipping_option=str(options[levels[0]]),
        address=OrderAddress(first_name=addr.get("first_name"), last_name=addr.get("last_name"),
                             address1=addr.get("address_line1") or addr.get("address_line_1"),
                             address2=addr.get("address_line2") or addr.get("address_line_2"),
                             city=addr.get("city"), zip_code=addr.get("zip_code"), state=addr.get("state"),
                             country=str(addr.get("country") or addr.get("country_code")).upper(),
                             email=str(order.email), phone=addr.get("phone")),
        lines=lines, currency=order.currency, placed_at=order.placed_at,
        paid_amount=round(sum(ln.unit_price * ln.quantity for ln in lines), 2),
        payment_reference=f"newstore-order-{order.order_id}")


def _missing(order: StoreSaleOrder) -> list[str]:
    addr = order.shipping_address or {}
    missing = [] if order.email else ["customer e-mail"]
    if not (addr.get("country") or addr.get("country_code")):
        missing.append("delivery country")
    if not (addr.get("address_line1") or addr.get("address_line_1")):
        missing.append("delivery address")
    return missing


def price_problems(order: StoreSaleOrder, created: CommerceOrder,
                   pickup_service_level: str) -> list[Problem]:
    """Charged prices (the store's, which the commerce order carries) that differ from the price list's."""
    off = []
    for line in created.lines:
        if line.list_price is None or abs(line.unit_price - line.list_price) <= PRICE_TOLERANCE:
            continue
        off.append({"sku": line.sku, "charged": line.unit_price, "price_list": line.list_price,
                    "quantity": line.quantity})
    if not off:
        return []
    skus = ", ".join(f"{o['sku']} {o['charged']:.2f} (list {o['price_list']:.2f})" for o in off)
    return [Problem(PRICE_OFF_PRICELIST, f"endless-aisle order {order.order_id} (commerce order {created.ref}, "
                    f"price list {created.pricelist_id}) charged off the price list: {skus}",
                    {"order": order.order_id, "commerce_order": created.ref, "pricelist": created.pricelist_id,
                     "currency": created.currency, "lines": off,
                     "store_units": len(delivery_items(order, pickup_service_level))})]


__all__ = ["DEFAULT_SHIPPING_MAP", "StoreTerms", "delivery_items", "is_endless_aisle", "order_request",
           "parse_shipping_map", "price_problems"]
