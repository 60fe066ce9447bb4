"""World API: an endless-aisle order taken at a store's till (the customer buys in store what the store does not
have; it is delivered to them from elsewhere).

REF §1.4 (`../shared/reference/platforms/newstore-commercetools-cloudshelf.md`): "POS sales are native:
`order.created` -> grace period -> `order.opened`, channel store, items `IN_STORE_HANDOVER`; endless-aisle items
carry a shipping service level [D][C]". So the order is a native store order (origin newstore, channel type
store, the store as its channel) whose items carry a delivery service level, paid at the till, published as
`order.created` and `order.opened` with the §1.2 payload. The store's stock does not move (nothing leaves its
shelf). Who fulfils it is the retailer's choice: here the commerce platform does (the order flows hand it to
Centra), so NewStore routes it nowhere (no fulfillment request): ASSUMPTION (PROVENANCE.md, "Endless aisle").
A function on the state rather than a mixin method, so the state class needs no change.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from .common import D, iso, money, tax_included
from .records import Order, OrderItem
from .state import NewStoreState
from .views import order_payload

DEFAULT_SERVICE_LEVEL = "STANDARD"  # ASSUMPTION: NewStore leaves service level names to the tenant


def take_endless_aisle_order(state: NewStoreState, node_id: str, items: list[dict[str, Any]], *,
                             service_level: str = DEFAULT_SERVICE_LEVEL, customer_email: str | None = None,
                             customer_name: str | None = None, shipping_address: dict[str, Any] | None = None,
                             at: datetime | None = None, associate_id: str | None = None,
                             external_id: str | None = None, payment_method: str = "credit_card") -> dict[str, Any]:
    """Take an endless-aisle order at the store `node_id`; returns the `order.opened` payload.

    ``items``: ``[{sku, quantity, unit_price (list price, tax included), discount (per unit amount)}]``;
    ``shipping_address``: NewStore's address (``first_name, last_name, address_line_1, city, zip_code,
    country``), ``None`` for an order taken without one (an incomplete order).
    """
    with state._lock:
        at = state._at(at)
        loc = state._node(node_id)
        if external_id is None:
            state._pos_seq += 1
            external_id = f"{node_id}-{state._pos_seq:07d}"
        if external_id in state._by_external:
            raise ValueError(f"order {external_id!r} already exists")
        rate = state._rate(loc.country)
        lines: list[OrderItem] = []
        for it in items:
            sku = str(it["sku"])
            state._sku(sku)
            unit, disc = D(it["unit_price"]), D(it.get("discount", 0) or 0)
            for _ in range(int(it.get("quantity", 1))):
                paid = unit - disc
                lines.append(OrderItem(
                    id=state._uuid(), external_item_id=f"{external_id}-{len(lines) + 1}", product_id=sku,
                    list_price=unit, item_discount=disc, order_discount=Decimal(0), price=paid,
                    tax=tax_included(paid, rate), tax_rate=rate, status="pending", service_level=service_level,
                    discounts=[{"level": "item", "type": "fixed", "value": money(disc),
                                "price_adjustment": money(disc)}] if disc else []))
        if not lines:
            raise ValueError("an order needs at least one item")
        order = Order(
            id=state._uuid(), external_id=external_id, origin="newstore", channel_type="store", channel=loc.id,
            store_id=loc.id, fulfillment_node_id=None, currency=loc.currency, price_method="tax_included",
            placed_at=at, created_at=at, items=lines, fulfillment_type="traditional",
            customer_email=customer_email, customer_name=customer_name, associate_id=associate_id,
            shipping_address=copy.deepcopy(shipping_address), billing_address=copy.deepcopy(shipping_address))
        order.payments = [{"amount": money(order.grand_total), "method": payment_method, "type": "captured",
                           "processed_at": iso(at)}]
        state._orders[order.id] = order
        state._by_external[external_id] = order.id
        state._publish("order.created", order_payload(order, state.estate), at)
        env = state._publish("order.opened", order_payload(order, state.estate), at)
        return copy.deepcopy(env["payload"])
