"""Decoding NewStore event-stream payloads into POS sale and return lines (pure functions).

Payload shapes follow NewStore's integration dataclasses and its own integrations (see
`pipelines/simulators/newstore/PROVENANCE.md`): store sales arrive as `order.opened` with
`IN_STORE_HANDOVER` items, one item per unit; returns as `return.processed`. Every number and
identifier read from a payload passes `pipelines.domain.bounds` first, so one malformed event
becomes one exception record instead of stopping everything landed after it.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pipelines.domain.bounds import check_id, check_int, check_money, check_sku
from pipelines.domain.timeutil import normalise_time

# The payload's own business-time field per event. Events without one (`inventory_count.items_counted`,
# `fulfillment_request.*`) take `published_at`, which NewStore may set hours after the fact.
_TIME_FIELDS = {
    "order.created": ("placed_at", "created_at"),
    "order.opened": ("placed_at", "created_at"),
    "return.processed": ("returned_at",),
    "refund_request.issued": ("requested_at",),
    "order.completed": ("completed_at",),  # not `placed_at`: a completion is its own business fact
    "inventory_transaction.items_received": ("processed_at",),
}
_GENERIC_TIME_FIELDS = ("processed_at", "created_at", "placed_at")

IN_STORE_HANDOVER = "IN_STORE_HANDOVER"
TAX_EXCLUDED = "tax_excluded"


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
    return check_money(float(value), "amount")


def _discount_total(entries: Any) -> float:
    if not entries:
        return 0.0
    if isinstance(entries, (int, float, str)):
        return _num(entries)
    total = 0.0
    for e in entries:
        total += abs(_num(e.get("price_adjustment", e.get("amount", 0)) if isinstance(e, dict) else e))
    return total


def store_node_of(payload: dict[str, Any]) -> str | None:
    """The store or node a payload happened at (node id or store id; `Estate.location_of` takes both).

    `fulfillment_location_id` is where inventory and fulfilment events happen; `channel` is the store
    of a store order; `return_location_id` the store that took a return.
    """
    for key in ("fulfillment_location_id", "channel", "return_location_id"):
        if payload.get(key):
            return check_id(payload[key], key)
    return None


def sku_of(item: dict[str, Any]) -> str:
    """An item's SKU: `external_identifiers.sku` where sent, else `product_id` (the SKU in this integration)."""
    ids = item.get("external_identifiers") or {}
    return check_sku(ids.get("sku") or item["product_id"])


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
        sku = sku_of(item)
        qty = check_int(item.get("quantity", 1), "quantity")
        ids = item.get("external_identifiers") or {}
        agg = lines.setdefault(sku, {"ean": ids.get("ean13"), "qty": 0, "unit": _num(item.get("list_price")),
                                     "disc": 0.0, "tax": 0.0})
        agg["qty"] += qty
        agg["disc"] += _discount_total(item.get("item_discounts")) + _discount_total(item.get("order_discounts"))
        agg["tax"] += _num(item.get("tax"))
    # `price_method`: with tax_included (the default, as at a European till) list prices contain the
    # tax, so net = gross - discount - tax; with tax_excluded the tax comes on top: net = gross - discount.
    tax_in_price = payload.get("price_method") != TAX_EXCLUDED
    out = []
    for n, (sku, a) in enumerate(lines.items(), start=1):
        gross = a["unit"] * a["qty"]
        net = gross - a["disc"] - (a["tax"] if tax_in_price else 0.0)
        out.append(PosLine(
            transaction_id=check_id(payload["id"], "id"), line_no=n, kind="sale", fulfillment_node_id=node,
            sku=sku, ean=a["ean"], quantity=a["qty"], unit_price=round(a["unit"], 2), discount=round(a["disc"], 2),
            tax=round(a["tax"], 2), net_amount=round(net, 2),
            currency=str(payload.get("currency") or ""), event_time=event_time,
            original_order_ref=online_order_ref(payload),
        ))
    return out


def decode_return(payload: dict[str, Any], event_time: str) -> list[PosLine]:
    """`return.processed` -> one line per returned item (quantities positive, kind "return").

    Amounts are the refund: unit_price is the refunded amount per unit incl. tax, tax the refunded
    tax, net_amount the refund excluding tax.
    """
    node = check_id(payload["return_location_id"], "return_location_id") if payload.get("return_location_id") \
        else store_node_of(payload) or ""
    out = []
    for n, item in enumerate(payload.get("items") or [], start=1):
        qty = check_int(item.get("quantity", 1), "quantity")
        refund = _num(item.get("refund_amount"))
        tax = _num(item.get("refund_tax"))
        excl = item.get("refund_excl_tax")
        net = _num(excl) if excl is not None else refund - tax
        ids = item.get("external_identifiers") or {}
        out.append(PosLine(
            transaction_id=check_id(payload["id"], "id"), line_no=n, kind="return", fulfillment_node_id=node,
            sku=sku_of(item), ean=ids.get("ean13"), quantity=qty,
            unit_price=round(refund / qty, 2) if qty else 0.0, discount=0.0, tax=round(tax, 2),
            net_amount=round(net, 2), currency=str(payload.get("currency") or ""), event_time=event_time,
            original_order_ref=online_order_ref(payload),
            original_transaction_id=str(payload["order_id"]) if payload.get("order_id") else None,
        ))
    return out


PICKUP_COMPLETED = "fulfillment_request.items_completed"


def is_pickup(payload: dict[str, Any]) -> bool:
    return "PICKUP" in str(payload.get("service_level") or "").upper()


# Events whose payload `id` names one transaction (order, return, refund request, inventory
# transaction, fulfilment request). `payment_account.*` is left out: its `id` is the payment account,
# shared by every refund on it.
_ID_KEYED = ("order.", "return.processed", "refund_request.", "inventory_transaction.", "fulfillment_request.")
# Events of which one transaction publishes several, told apart only by their items (one
# `items_completed` per shipped item, one `items_cancelled` per cancellation).
_ITEM_KEYED = ("fulfillment_request.", "order.items_")
# Events a transaction publishes once: the name and id are the identity. A `logical_timestamp` they may
# carry is left out, so an event recovered from NewStore's API (which has none) has the streamed one's key.
_ONCE_PER_TRANSACTION = ("order.created", "order.opened", "order.completed", "order.cancelled", "return.processed",
                         "refund_request.issued")
COUNT_EVENT = "inventory_count.items_counted"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()[:32]


def business_key(name: str, payload: dict[str, Any]) -> str:
    """The identity of the business fact an event reports, the same for every redelivery of it.

    NewStore delivers at least once, and a redelivery may carry a new `published_at` or extra fields,
    so the envelope and the whole body cannot be the identity. It is the event name plus the
    transaction's `id`; for events one transaction publishes several of, also its `logical_timestamp` and
    `chunk_number` where present, and the item ids where only the items tell them apart. A count has no id: its identity is
    the location, the chunk and the counted items. Events with none of these fall back to a hash of
    the payload (a changed redelivery of those is stored twice, and is harmless: none moves stock).
    """
    if name == COUNT_EVENT:
        items = sorted((str(i.get("product_id")), str(i.get("count")), str(i.get("stock_on_hand")))
                       for i in payload.get("items") or [] if isinstance(i, dict))
        return (f"{name}:{payload.get('fulfillment_location_id')}:chunk={payload.get('chunk_number')}"
                f"/{payload.get('total_chunks')}:items={_digest(items)}")
    ident = payload.get("id")
    if ident in (None, "") or isinstance(ident, (dict, list)) or not name.startswith(_ID_KEYED):
        return f"{name}:sha256:{_digest(payload)}"
    parts = [name, str(ident)]
    if name in _ONCE_PER_TRANSACTION:
        return ":".join(parts)
    if payload.get("logical_timestamp") is not None:
        parts.append(f"lt={payload['logical_timestamp']}")
    if payload.get("chunk_number") is not None:
        parts.append(f"chunk={payload['chunk_number']}")
    if name.startswith(_ITEM_KEYED):
        ids = sorted(str(i.get("id")) for i in payload.get("items") or [] if isinstance(i, dict))
        parts.append(f"items={_digest(ids)}")
    return ":".join(parts)


def payload_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """The event's payload from a landed envelope `{tenant, name, published_at, payload}` (a bare payload as is)."""
    inner = envelope.get("payload")
    return inner if isinstance(inner, dict) else envelope


def order_key_prefix(name: str, order_id: str) -> str:
    """The start of `business_key` for an order event of `order_id` (for look-ups by order)."""
    return f"{name}:{order_id}"
