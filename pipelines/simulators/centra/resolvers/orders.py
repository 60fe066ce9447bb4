"""Orders: the `orders`, `order` and `orderConnection` queries and the order, order line and
allocation types."""

from __future__ import annotations

import functools
from typing import Any

from ariadne import InterfaceType, ObjectType, convert_camel_case_to_snake

from pipelines.simulators.centra.state import CentraState, OrderLineRec, OrderRec

from .common import _match, _net, _sorted, _state, connection, in_range, money, needs, paginate, query


def _orders(state: CentraState, where: dict[str, Any] | None, sort: list[str] | None) -> list[OrderRec]:
    w = where or {}
    store_types = {sid: s["type"] for sid, s in state.stores.items()}
    country_ids = {code: c["id"] for code, c in state.countries.items()}
    search = (w.get("search") or "").lower()
    out = []
    for o in state.orders.values():
        if ((w.get("id") and o.id not in w["id"]) or (w.get("number") and o.number not in w["number"])
                or (w.get("status") and o.status not in w["status"])
                or not in_range(o.created_at, w.get("created_at")) or not in_range(o.updated_at, w.get("updated_at"))
                or not in_range(o.order_date, w.get("order_date"))
                or (w.get("store_id") and o.store_id not in w["store_id"])
                or (w.get("store_type") and store_types.get(o.store_id) != w["store_type"])
                or (w.get("market_id") and o.market_id not in w["market_id"])
                or (w.get("pricelist_id") and o.pricelist_id not in w["pricelist_id"])
                or (w.get("country_id") and country_ids.get(o.country) not in w["country_id"])
                or (w.get("customer_id") and o.customer_id not in w["customer_id"])
                or not _match(o.external_id, w.get("external_id"))
                or (w.get("is_locked") is not None and o.is_locked != w["is_locked"])
                or (w.get("is_on_hold") is not None and o.is_on_hold != w["is_on_hold"])):
            continue
        if search and search not in f"{o.number} {o.id} {o.email} {o.external_id or ''}".lower():
            continue
        out.append(o)
    keys = {"id": lambda o: o.number, "number": lambda o: o.number, "createdAt": lambda o: o.created_at,
            "updatedAt": lambda o: o.updated_at, "orderDate": lambda o: o.order_date}
    return _sorted(out, sort, keys)


@query.field("orders")
@needs("Order:read")
def r_orders(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = 20,
             page: int | None = 1) -> list:
    return paginate(_orders(_state(info), where, sort), limit, page)


@query.field("order")
@needs("Order:read")
def r_order(_: Any, info: Any, id: str) -> Any:  # noqa: A002
    return _state(info).orders_by_id.get(id)


@query.field("orderConnection")
@needs("Order:read")
def r_order_connection(_: Any, info: Any, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None, where: dict | None = None,
                       sort: list | None = None) -> dict:
    # Cursors name an order number; with a `sort` they are positions of that order in the sorted list.
    return connection(_orders(_state(info), where, sort), lambda o: o.number, "number",
                      first=first, after=after, last=last, before=before, positional=bool(sort))


# ------------------------------------------------------------------ object types

order_iface = InterfaceType("Order")
order_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerOrder")
line_iface = InterfaceType("OrderLine")
line_iface.set_type_resolver(lambda obj, *_: "ProductOrderLine")


order_t = ObjectType("DirectToConsumerOrder")
order_t.set_field("store", lambda o, info: _state(info).stores[o.store_id])
order_t.set_field("market", lambda o, info: _state(info).markets.get(o.market_id))
order_t.set_field("pricelist", lambda o, info: _state(info).pricelists.get(o.pricelist_id))
order_t.set_field("country", lambda o, info: _state(info).countries.get(o.country))
order_t.set_field("shipments", lambda o, info: [_state(info).shipments[s] for s in o.shipment_ids])
order_t.set_field("returns", lambda o, info: [_state(info).returns[r] for r in o.return_ids])


def _names(o: OrderRec) -> tuple[str, str]:
    return (o.first_name or o.email.split("@")[0].split(".")[0].title(), o.last_name or "Customer")


def _address(state: CentraState, o: OrderRec, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The order's address: names from customerInfo (else the email), the market's country, and the fields
    an updateDirectToConsumerOrder address input set (camelCase keys)."""
    first, last = _names(o)
    out: dict[str, Any] = {"first_name": first, "last_name": last, "email": o.email,
                           "country": state.countries.get(o.country), "state": None}
    for key, value in (overrides or {}).items():
        out[convert_camel_case_to_snake(key)] = value
    return out


def shipping_address(state: CentraState, o: OrderRec) -> dict[str, Any]:
    return _address(state, o, o.shipping_address)


@order_t.field("shippingAddress")
@needs("Order.shippingAddress:read")
def r_shipping_address(o: OrderRec, info: Any) -> dict:
    return _address(_state(info), o, o.shipping_address)


@order_t.field("billingAddress")
@needs("Order.billingAddress:read")
def r_billing_address(o: OrderRec, info: Any) -> dict:
    return _address(_state(info), o, o.billing_address)


@order_t.field("customer")
@needs("Purchaser:read")
def r_customer(o: OrderRec, info: Any) -> dict:
    first, last = _names(o)
    return {"id": o.customer_id, "email": o.email, "first_name": first, "last_name": last}


@order_t.field("paymentHistory")
@needs("PaymentHistory:read")
def r_payment_history(o: OrderRec, info: Any, where: dict | None = None) -> list:
    types = (where or {}).get("entry_type")
    return [p for p in o.payment_history if not types or p.entry_type in types]


@order_t.field("grandTotal")
def r_order_grand_total(o: OrderRec, info: Any, including_tax: bool = True) -> dict:
    state = _state(info)
    return money(state, state.order_grand_total(o, including_tax=including_tax is not False), o.currency)


@order_t.field("lines")
def r_order_lines(o: OrderRec, info: Any, include_fully_cancelled: bool = False) -> list:
    return [ln for ln in o.lines if include_fully_cancelled or ln.quantity > 0]


@order_t.field("totals")
def r_order_totals(o: OrderRec, info: Any) -> dict:
    state = _state(info)
    rate = state.estate.tax_rates.get(o.country, 0.0)
    items_tax = sum(ln.unit_price * ln.quantity * (1 - 1 / (1 + ln.tax_percent / 100)) for ln in o.lines)
    ship_tax = o.shipping_value * (1 - 1 / (1 + rate))
    discounts = -sum((ln.unit_original_price - ln.unit_price) * ln.quantity for ln in o.lines
                     if ln.unit_price < ln.unit_original_price)
    m = functools.partial(money, state, currency=o.currency)
    return {"quantity": sum(ln.quantity for ln in o.lines), "grand_total": m(state.order_grand_total(o)),
            "shipping": m(o.shipping_value), "handling": m(0.0), "discounts": m(discounts), "tax_added": m(0.0),
            "tax_deducted": m(0.0), "tax_included": m(items_tax + ship_tax), "shipping_tax_included": m(ship_tax)}


line_t = ObjectType("ProductOrderLine")


def _line_currency(info: Any, ln: OrderLineRec) -> str:
    return _state(info).orders[ln.order_number].currency


line_t.set_field("productNumber", lambda ln, info: ln.ref.product.product_number)
line_t.set_field("productName", lambda ln, info: ln.ref.product.name)
line_t.set_field("productVariantName", lambda ln, info: ln.ref.variant.name)
line_t.set_field("size", lambda ln, info: ln.ref.size.size)
line_t.set_field("cancelledQuantity", lambda ln, info: ln.cancelled)
line_t.set_field("returnedQuantity", lambda ln, info: ln.returned)
line_t.set_field("shippedQuantity", lambda ln, info: ln.shipped)
line_t.set_field("hasAnyDiscount", lambda ln, info: ln.unit_price < ln.unit_original_price)
line_t.set_field("productVariant", lambda ln, info: ln.ref.variant)
line_t.set_field("productSize", lambda ln, info: ln.ref)
line_t.set_field("unitOriginalPrice", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_original_price, ln.tax_percent, including_tax is not False), _line_currency(info, ln)))
line_t.set_field("unitPrice", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_price, ln.tax_percent, including_tax is not False), _line_currency(info, ln)))
line_t.set_field("lineValue", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_price * ln.quantity, ln.tax_percent, including_tax is not False),
    _line_currency(info, ln)))

allocation_t = ObjectType("OrderLineAllocation")
allocation_t.set_field("warehouse", lambda a, info: _state(info).warehouses[a.warehouse_id])
allocation_t.set_field("stockChangeLine", lambda a, info: None)


# ------------------------------------------------------------------ documented order fields (issue 12)

line_t.set_field("brand", lambda ln, info: _state(info).brand)


@line_t.field("product")
@needs("Product:read")
def r_line_product(ln: OrderLineRec, info: Any) -> Any:
    return ln.ref.product


@order_t.field("discountsApplied")
def r_discounts_applied(o: OrderRec, info: Any) -> list:
    """One applied discount for the order's price reductions (list price - charged), none without any."""
    state = _state(info)
    total = sum((ln.unit_original_price - ln.unit_price) * ln.quantity for ln in o.lines
                if ln.unit_price < ln.unit_original_price)
    if total <= 0:
        return []
    return [{"value": money(state, total, o.currency), "date": o.created_at, "discount": None}]


order_t.set_field("paymentMethod", lambda o, info: _state(info).payment_method)


@order_t.field("shippingPriceGroup")
def r_shipping_price_group(o: OrderRec, info: Any) -> dict:
    name = _state(info).shipping_options[o.shipping_option_id]
    uri = "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())
    return {"shipping_option": {"id": o.shipping_option_id, "name": name, "uri": uri}}
