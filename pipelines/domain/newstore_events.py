"""Decoding NewStore event-stream payloads into POS sale and return lines (pure functions).

Payload shapes follow NewStore's integration dataclasses (see README, "NewStore events"): store
sales arrive as `order.opened` with `IN_STORE_HANDOVER` items, one item per unit; returns as
`return.processed`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pipelines.domain.timeutil import normalise_time

_TIME_FIELDS = {
    "order.created": ("placed_at", "created_at"),
    "order.opened": ("placed_at", "created_at"),
    "return.processed": ("returned_at",),
    "refund_request.issued": ("requested_at",),
    "inventory_count.items_counted": ("counted_at", "occurred_at", "created_at"),
    "fulfillment_request.items_completed": ("completed_at",),
}
_GENERIC_TIME_FIELDS = ("occurred_at", "created_at", "placed_at", "updated_at")

IN_STORE_HANDOVER = "IN_STORE_HANDOVER"


def event_time_of(name: str, payload: dict[str, Any], published_at: str | None) -> str | None:
    """The business time of an event: the payload's own time field, else the publication time."""
    for key in _TIME_FIELDS.get(name, ()) + _GENERIC_TIME_FIELDS:
        value = payload.get(key)
        if value:
            try:
                return normalise_time(str(value))
            except ValueError:
                continue
    if published_at:
        try:
            return normalise_time(published_at)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class PosLine:
    transaction_id: str
    line_no: int
    kind: str  # "sale" | "return"
    fulfillment_node_id: str
    sku: str
    ean: str | None
    quantity: int
    unit_price: float
    discount: float
    tax: float
    net_amount: float
    currency: str
    event_time: str
    original_order_ref: str | None  # the online (commerce platform) order, for returns of web orders
    original_transaction_id: str | None = None  # the POS's own original sale, for returns of store sales


def _num(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, dict):  # {"amount": x} forms
        value = value.get("amount", value.get("value", 0))
    return float(value)


def _discount_total(entries: Any) -> float:
    if not entries:
        return 0.0
    if isinstance(entries, (int, float, str)):
        return float(entries)
    total = 0.0
    for e in entries:
        total += abs(_num(e.get("price_adjustment", e.get("amount", 0)))) if isinstance(e, dict) else abs(float(e))
    return total


def store_node_of(payload: dict[str, Any]) -> str | None:
    for key in ("fulfillment_node_id", "store_id", "channel", "return_location_id"):
        if payload.get(key):
            return str(payload[key])
    return None


def online_order_ref(payload: dict[str, Any]) -> str | None:
    """The original online (commerce platform) order a store transaction refers to, if any."""
    if payload.get("external_order_id"):
        return str(payload["external_order_id"])
    for attr in payload.get("extended_attributes") or []:
        if isinstance(attr, dict) and attr.get("name") in ("online_order_number", "external_order_id"):
            return str(attr.get("value")) if attr.get("value") not in (None, "") else None
    return None


def is_store_sale(payload: dict[str, Any]) -> bool:
    items = payload.get("items") or []
    return payload.get("channel_type") == "store" and any(
        (i.get("shipping_service_level") or "") == IN_STORE_HANDOVER for i in items
    )


def decode_store_sale(payload: dict[str, Any], event_time: str) -> list[PosLine]:
    """`order.opened` of a store sale -> one line per SKU (items are one unit each)."""
    node = store_node_of(payload) or ""
    lines: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for item in payload.get("items") or []:
        if (item.get("shipping_service_level") or IN_STORE_HANDOVER) != IN_STORE_HANDOVER:
            continue
        if item.get("status") == "cancelled":
            continue
        ids = item.get("external_identifiers") or {}
        sku = str(ids.get("sku") or item.get("product_id"))
        qty = int(item.get("quantity") or 1)
        agg = lines.setdefault(sku, {"ean": ids.get("ean13"), "qty": 0, "unit": _num(item.get("list_price")),
                                     "disc": 0.0, "tax": 0.0})
        agg["qty"] += qty
        agg["disc"] += _discount_total(item.get("item_discounts")) + _discount_total(item.get("order_discounts"))
        agg["tax"] += _num(item.get("tax"))
    out = []
    for n, (sku, a) in enumerate(lines.items(), start=1):
        gross = a["unit"] * a["qty"]
        out.append(PosLine(
            transaction_id=str(payload["id"]), line_no=n, kind="sale", fulfillment_node_id=node, sku=sku,
            ean=a["ean"], quantity=a["qty"], unit_price=round(a["unit"], 2), discount=round(a["disc"], 2),
            tax=round(a["tax"], 2), net_amount=round(gross - a["disc"] - a["tax"], 2),
            currency=str(payload.get("currency") or ""), event_time=event_time,
            original_order_ref=online_order_ref(payload),
        ))
    return out


def decode_return(payload: dict[str, Any], event_time: str) -> list[PosLine]:
    """`return.processed` -> one line per returned item (quantities positive, kind "return").

    Amounts are the refund: unit_price is the refunded amount per unit incl. tax, tax the refunded
    tax, net_amount the refund excluding tax.
    """
    node = str(payload.get("return_location_id") or store_node_of(payload) or "")
    out = []
    for n, item in enumerate(payload.get("items") or [], start=1):
        qty = int(item.get("quantity") or 1)
        refund = _num(item.get("refund_amount"))
        tax = _num(item.get("refund_tax"))
        excl = item.get("refund_excl_tax")
        net = _num(excl) if excl is not None else refund - tax
        ids = item.get("external_identifiers") or {}
        out.append(PosLine(
            transaction_id=str(payload["id"]), line_no=n, kind="return", fulfillment_node_id=node,
            sku=str(ids.get("sku") or item.get("product_id")), ean=ids.get("ean13"), quantity=qty,
            unit_price=round(refund / qty, 2) if qty else 0.0, discount=0.0, tax=round(tax, 2),
            net_amount=round(net, 2), currency=str(payload.get("currency") or ""), event_time=event_time,
            original_order_ref=online_order_ref(payload),
            original_transaction_id=str(payload["order_id"]) if payload.get("order_id") else None,
        ))
    return out


PICKUP_COMPLETED = "fulfillment_request.items_completed"


def is_pickup(payload: dict[str, Any]) -> bool:
    return "PICKUP" in str(payload.get("service_level") or "").upper()
