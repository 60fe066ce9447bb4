"""Stock-affecting POS events -> stock movements (pure).

A movement is a delta (sale, return restock, receipt, adjustment) or an absolute count at a
fulfillment node for a SKU, with its event time, NewStore's logical timestamp and a key that
identifies it across redeliveries (the inbox dedup key plus the SKU).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from pipelines.domain.bounds import check_int, check_logical_timestamp
from pipelines.domain.estate_mapping import map_to_estate
from pipelines.domain.exceptions import (
    FULFILMENT_ORDER_UNKNOWN,
    UNDECODABLE_EVENT,
    ExceptionRecord,
)
from pipelines.domain.newstore_events import IN_STORE_HANDOVER, is_store_sale, sku_of, store_node_of
from pipelines.estate import Estate

SALE_EVENT = "order.opened"
RETURN_EVENT = "return.processed"
RECEIPT_EVENT = "inventory_transaction.items_received"
# ASSUMPTION (no NewStore source names the event of a reason-coded adjustment): see the simulator's
# PROVENANCE.md. Decoded like a receipt with signed quantities.
ADJUSTMENT_EVENT = "inventory_transaction.items_adjusted"
COUNT_EVENT = "inventory_count.items_counted"
FULFILMENT_EVENT = "fulfillment_request.items_completed"
CANCEL_EVENT = "order.items_cancelled"
ORDER_EVENTS = ("order.opened", "order.created")

STOCK_EVENTS = (SALE_EVENT, RETURN_EVENT, RECEIPT_EVENT, ADJUSTMENT_EVENT, COUNT_EVENT, FULFILMENT_EVENT)

MOVEMENT_COLUMNS = ["movement_key", "event_name", "event_time", "logical_timestamp", "fulfillment_node_id",
                    "location_id", "sku", "sku_known", "movement_type", "quantity", "source_event"]


@dataclass(frozen=True)
class Movement:
    movement_key: str
    event_name: str
    event_time: str
    logical_timestamp: int | None
    fulfillment_node_id: str
    sku: str
    movement_type: str  # sale | return | receipt | adjustment | count | shipment
    quantity: int  # a signed delta, or the counted quantity for "count"


class OrderContext(Protocol):
    """What decoding needs to know about an order beyond the event in hand (from the landed events)."""

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The order's `order.opened` (or `order.created`) payload, None when not landed."""

    def cancelled_items(self, order_id: str) -> set[str]:
        """Ids of the order's items that an `order.items_cancelled` event cancelled."""


class NoContext:
    """No landed events to consult: no order is known and nothing was cancelled."""

    def order(self, order_id: str) -> dict[str, Any] | None:
        return None

    def cancelled_items(self, order_id: str) -> set[str]:
        return set()


class OrderNotLanded(Exception):
    """A fulfilment completion whose order has not landed: whether it moves stock is not known yet."""

    def __init__(self, order_id: str):
        super().__init__(f"order {order_id!r} of the fulfilment completion has not landed")
        self.order_id = order_id


def _unit(item: dict[str, Any]) -> int:
    return check_int(item.get("quantity", 1), "quantity", lo=0)


def _sale(payload: dict[str, Any], context: OrderContext) -> dict[str, int]:
    """Units handed over at the till leave the store. Items cancelled (in the payload, or by an
    `order.items_cancelled` already landed) never left; items with a shipping service level leave
    when their fulfilment request completes."""
    if not is_store_sale(payload):
        return {}
    cancelled = context.cancelled_items(str(payload.get("id")))
    per_sku: dict[str, int] = {}
    for item in payload.get("items") or []:
        if (item.get("shipping_service_level") or IN_STORE_HANDOVER) != IN_STORE_HANDOVER \
                or item.get("status") == "cancelled" or str(item.get("id")) in cancelled:
            continue
        per_sku[sku_of(item)] = per_sku.get(sku_of(item), 0) - _unit(item)
    return per_sku


def _fulfilment(payload: dict[str, Any], context: OrderContext) -> dict[str, int]:
    """A completed fulfilment request takes its items (one unit each) out of the fulfilling location,
    except a till sale's (`IN_STORE_HANDOVER`: the sale itself moved the stock) and an order of the
    commerce platform injected into NewStore (not a store order: the platform's own shipment takes the
    unit out of its warehouse, so pushing it too would count it twice)."""
    if (payload.get("service_level") or "") == IN_STORE_HANDOVER:
        return {}
    order_id = str(payload.get("order_id") or "")
    order = context.order(order_id)
    if order is None:
        raise OrderNotLanded(order_id)
    if order.get("channel_type") != "store":
        return {}
    per_sku: dict[str, int] = {}
    for item in payload.get("items") or []:
        per_sku[sku_of(item)] = per_sku.get(sku_of(item), 0) - 1
    return per_sku


def _summed(items: Iterable[dict[str, Any]], field: str = "quantity") -> dict[str, int]:
    per_sku: dict[str, int] = {}
    for item in items:
        per_sku[sku_of(item)] = per_sku.get(sku_of(item), 0) + check_int(item[field], field)
    return per_sku


def decode_movements(key: str, name: str, event_time: str, payload: dict[str, Any],
                     context: OrderContext | None = None) -> list[Movement]:
    """The stock movements one event stands for. Raises `ValueError` (bounds included) for a payload
    that cannot be decoded, `OrderNotLanded` for a completion whose order is not known yet."""
    context = context or NoContext()
    lt = check_logical_timestamp(payload.get("logical_timestamp"))
    node = store_node_of(payload) or ""
    items = payload.get("items") or []
    if name == SALE_EVENT:
        per_sku, kind = _sale(payload, context), "sale"
    elif name == RETURN_EVENT:
        per_sku, kind = _summed(i for i in items if (i.get("item_condition") or "sellable") == "sellable"), "return"
    elif name == COUNT_EVENT:
        # `count` is what is physically there; `stock_on_hand` what NewStore had on record before.
        per_sku, kind = {sku_of(i): check_int(i["count"], "count", lo=0) for i in items}, "count"
    elif name == RECEIPT_EVENT:
        per_sku, kind = _summed(items), "receipt"
    elif name == ADJUSTMENT_EVENT:
        per_sku, kind = _summed(items), "adjustment"
    elif name == FULFILMENT_EVENT:
        per_sku, kind = _fulfilment(payload, context), "shipment"
    else:
        return []
    if not node and per_sku:
        raise ValueError(f"{name} names no location")
    return [Movement(f"{key}:{sku}", name, event_time, lt, node, sku, kind, qty)
            for sku, qty in per_sku.items() if kind == "count" or qty != 0]


def decode_or_report(key: str, name: str, when: str, payload: dict[str, Any], context: OrderContext,
                     source: str, **record: Any) -> tuple[list[Movement], ExceptionRecord | None]:
    """`decode_movements`, with a payload it cannot decode turned into one exception record."""
    try:
        return decode_movements(key, name, when, payload, context), None
    except OrderNotLanded as exc:
        return [], ExceptionRecord.of(FULFILMENT_ORDER_UNKNOWN, f"{source}:{key}", source, f"{name}: {exc}",
                                      payload=payload, **record)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        return [], ExceptionRecord.of(UNDECODABLE_EVENT, f"{source}:{key}", source, f"{name}: {exc!r}",
                                      payload=payload, **record)


def build_movements(events: Iterable[tuple[str, str, str, dict[str, Any]]], estate: Estate,
                    business_date: str, context: OrderContext | None = None,
                    ) -> tuple[pd.DataFrame, list[ExceptionRecord]]:
    """events: (dedup_key, event_name, event_time, envelope) -> movements frame + exception records."""
    rows, problems = [], []
    context = context or NoContext()
    for key, name, when, envelope in events:
        payload = envelope.get("payload", envelope)
        moves, problem = decode_or_report(key, name, when, payload, context, "newstore",
                                          business_date=business_date)
        if problem is not None:
            problems.append(problem)
            continue
        for m in moves:
            mapped = map_to_estate(estate, m.fulfillment_node_id, m.sku, f"({m.movement_type})", business_date)
            problems += mapped.problems
            rows.append({**m.__dict__, "location_id": mapped.location_id, "sku_known": mapped.sku_known,
                         "source_event": key, "fulfillment_node_id": mapped.node_id})
    df = pd.DataFrame(rows, columns=MOVEMENT_COLUMNS)
    if not df.empty:
        df = df.astype({"quantity": int, "sku_known": bool})
        df["logical_timestamp"] = df["logical_timestamp"].astype("Int64")
    return df, problems
