"""JSON views of NewStore records: the ``order.*`` event payload, the sales-order view served by
``GET /v0/orders/{id}`` and their address, discount and payment pieces. Pure functions of a record
(and the estate, for product identifiers and attributes)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from pipelines.estate.model import Estate

from .common import iso, money
from .records import Order, OrderItem


def external_identifiers(estate: Estate, sku: str) -> dict[str, str | None]:
    ref = estate.by_sku.get(sku)
    return {"sku": sku, "ean13": ref.size.ean if ref else None}


# -- events ---------------------------------------------------------------------------------------


def order_payload(order: Order, estate: Estate) -> dict[str, Any]:
    """Payload of ``order.created`` / ``order.opened``."""
    items = order.items
    subtotal = sum((i.list_price for i in items), Decimal(0))
    disc = sum((i.item_discount + i.order_discount for i in items), Decimal(0))
    tax = sum((i.tax for i in items), Decimal(0)) + order.shipping_tax
    return {
        "id": order.id,
        "external_id": order.external_id,
        "created_at": iso(order.created_at),
        "placed_at": iso(order.placed_at),
        "associate_id": order.associate_id,
        "channel_type": order.channel_type,
        "channel": order.channel,
        "is_exchange": False,
        "exchanges": [],
        "customer_id": order.customer_id,
        "customer_email": order.customer_email,
        "is_historical": order.is_historical,
        "billing_address": event_address(order.billing_address),
        "shipping_address": event_address(order.shipping_address),
        "price_method": order.price_method,
        "subtotal": money(subtotal),
        "discount_total": money(disc),
        "shipping_total": money(order.shipping_total),
        "shipping_tax": money(order.shipping_tax),
        "tax_total": money(tax),
        "grand_total": money(order.grand_total),
        "currency": order.currency,
        "tax_exempt": False,
        "extended_attributes": copy.deepcopy(order.extended_attributes),
        "items": [_event_item(i, estate) for i in items],
    }


def _event_item(i: OrderItem, estate: Estate) -> dict[str, Any]:
    return {
        "id": i.id,
        "product_id": i.product_id,
        "list_price": money(i.list_price),
        "item_discounts": money(i.item_discount),
        "order_discounts": money(i.order_discount),
        "tax": money(i.tax),
        "quantity": 1,
        "status": "completed" if i.status == "complete" else i.status,
        "external_identifiers": external_identifiers(estate, i.product_id),
        "shipping_service_level": i.service_level,
    }


def event_address(addr: dict[str, Any] | None) -> dict[str, Any] | None:
    if not addr:
        return None
    out = {k: v for k, v in addr.items() if k not in ("address_line_1", "address_line_2")}
    out["address_line1"] = addr.get("address_line_1")
    out["address_line2"] = addr.get("address_line_2")
    return out


# -- sales order (REST) ---------------------------------------------------------------------------------


def sales_order(order: Order, estate: Estate) -> dict[str, Any]:
    """``GET /v0/orders/{id}``: SalesOrderDetailResponse shape."""
    gross = sum((order.gross(i) for i in order.items), Decimal(0))
    tax = sum((i.tax for i in order.items), Decimal(0))
    disc = sum((i.item_discount + i.order_discount for i in order.items), Decimal(0))
    ship_gross = order.shipping_total + (order.shipping_tax if order.price_method == "tax_excluded" else 0)
    out: dict[str, Any] = {
        "id": order.id,
        "origin": order.origin,
        "origin_id": order.external_id,
        "channel_type": "store" if order.channel_type == "store" else "web",
        "status": order.status,
        "fulfillment_type": order.fulfillment_type,
        "placed_at": iso(order.placed_at),
        "currency": order.currency,
        "tax_method": "vat_included" if order.price_method == "tax_included" else "vat_excluded",
        "is_offline": False,
        "tax_exempt": False,
        "items": [_sales_item(order, i, estate) for i in order.items],
        "totals": {"gross": money(gross), "net": money(gross - tax), "tax": money(tax + order.shipping_tax),
                   "discount": money(disc), "shipping": money(ship_gross), "gift_wrapping": 0.0,
                   "total": money(order.grand_total)},
        "payment_history": [payment_history(p, order.currency) for p in order.payments],
        "extended_attributes": copy.deepcopy(order.extended_attributes),
        "shipments": [],
    }
    if order.store_id:
        out["store_id"] = order.store_id
    if order.shop_locale:
        out["shop_locale"] = order.shop_locale
    customer = {k: v for k, v in (("email", order.customer_email), ("name", order.customer_name),
                                  ("id", order.customer_id)) if v}
    if customer:
        out["customer"] = customer
    for key in ("shipping_address", "billing_address"):
        addr = getattr(order, key)
        if addr:
            out[key] = sales_address(addr)
    return out


def _sales_item(order: Order, i: OrderItem, estate: Estate) -> dict[str, Any]:
    g = order.gross(i)
    base = i.list_price if order.price_method == "tax_included" else i.list_price + i.tax
    d = i.item_discount + i.order_discount
    ref = estate.by_sku.get(i.product_id)
    attrs: dict[str, Any] = {"name": ref.product.name if ref else i.product_id}
    if ref:
        attrs.update(size=ref.size.size, color=ref.variant.name)
    row: dict[str, Any] = {
        "id": i.id, "origin_id": i.external_item_id, "product_id": i.product_id, "status": i.status,
        "price": {"base": money(base), "discount": money(d), "gross": money(g), "net": money(g - i.tax),
                  "tax": money(i.tax)},
        "price_catalog": money(base),
        "tax_lines": [{"amount": money(i.tax), "rate": float(i.tax_rate)}] if i.tax else [],
        "discounts": copy.deepcopy(i.discounts),
        "product_attributes": attrs,
        "fulfillment_group_type": "IN_STORE_HANDOVER" if i.service_level == "IN_STORE_HANDOVER"
        else "SHIPPING",
        "shipping_method": i.service_level,
        "extended_attributes": copy.deepcopy(i.extended_attributes),
    }
    if i.addon_parent_item_id:
        row["addon_parent_item_id"] = i.addon_parent_item_id
    return row


def sales_address(addr: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in addr.items() if k in ("address_line_1", "address_line_2", "city", "first_name",
                                                   "last_name", "phone", "salutation", "state", "suffix", "zip_code")}
    if addr.get("country"):
        out["country_code"] = addr["country"]
    return out


def sales_discount(d: dict[str, Any], level: str) -> dict[str, Any]:
    """A discount of an injected order (``item_discount_info`` / ``item_order_discount_info``) as the
    sales-order view shows it."""
    out = {"level": level, "type": d.get("type") if d.get("type") in ("fixed", "percentage") else "fixed",
           "value": abs(float(d.get("original_value", d.get("price_adjustment", 0)) or 0)),
           "price_adjustment": abs(float(d.get("price_adjustment", 0) or 0))}
    if d.get("coupon_code"):
        out["coupon_code"] = d["coupon_code"]
    if d.get("description"):
        out["reason"] = d["description"]
    return out


def payment_history(p: dict[str, Any], currency: str) -> dict[str, Any]:
    method = p.get("method") if p.get("method") in ("gift_card", "credit_card", "cash") else "credit_card"
    return {"amount": money(p.get("amount", 0)), "category": "payment", "currency": currency, "method": method}
