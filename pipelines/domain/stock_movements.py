"""Stock-affecting POS events -> stock movements (pure).

A movement is a delta (sale, return restock, receipt, adjustment) or an absolute count at a
fulfillment node for a SKU, with its event time, NewStore's logical timestamp and a key that
identifies it across redeliveries (the inbox dedup key plus the SKU).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.domain.exceptions import UNDECODABLE_EVENT, UNKNOWN_SKU, UNMAPPED_LOCATION, ExceptionRecord
from pipelines.domain.newstore_events import IN_STORE_HANDOVER, is_store_sale, store_node_of
from pipelines.estate import Estate

STOCK_EVENTS = (
    "order.opened",
    "return.processed",
    "inventory_transaction.items_received",
    "inventory_transaction.items_adjusted",
    "inventory_count.items_counted",
)

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
    movement_type: str  # sale | return | receipt | adjustment | count
    quantity: int  # a signed delta, or the counted quantity for "count"


def _sku_of(item: dict[str, Any]) -> str:
    ids = item.get("external_identifiers") or {}
    return str(ids.get("sku") or item["product_id"])


def decode_movements(key: str, name: str, event_time: str, payload: dict[str, Any]) -> list[Movement]:
    lt = payload.get("logical_timestamp")
    lt = int(lt) if lt is not None else None
    node = str(store_node_of(payload) or "")
    per_sku: dict[str, int] = {}
    if name == "order.opened":
        if not is_store_sale(payload):
            return []
        for item in payload.get("items") or []:
            if (item.get("shipping_service_level") or IN_STORE_HANDOVER) == IN_STORE_HANDOVER \
                    and item.get("status") != "cancelled":
                per_sku[_sku_of(item)] = per_sku.get(_sku_of(item), 0) - int(item.get("quantity") or 1)
        kind = "sale"
    elif name == "return.processed":
        node = str(payload.get("return_location_id") or node)
        for item in payload.get("items") or []:
            if (item.get("item_condition") or "sellable") == "sellable":
                per_sku[_sku_of(item)] = per_sku.get(_sku_of(item), 0) + int(item.get("quantity") or 1)
        kind = "return"
    elif name == "inventory_count.items_counted":
        for item in payload.get("items") or []:
            per_sku[_sku_of(item)] = int(item["quantity"])
        kind = "count"
    elif name.startswith("inventory_transaction."):
        for item in payload.get("items") or []:
            per_sku[_sku_of(item)] = per_sku.get(_sku_of(item), 0) + int(item["quantity"])
        kind = "receipt" if name.endswith("items_received") else "adjustment"
    else:
        return []
    return [Movement(f"{key}:{sku}", name, event_time, lt, node, sku, kind, qty)
            for sku, qty in per_sku.items() if kind == "count" or qty != 0]


def build_movements(events: Iterable[tuple[str, str, str, dict[str, Any]]], estate: Estate,
                    business_date: str) -> tuple[pd.DataFrame, list[ExceptionRecord]]:
    """events: (dedup_key, event_name, event_time, envelope) -> movements frame + exception records."""
    rows, problems = [], []
    for key, name, when, envelope in events:
        payload = envelope.get("payload", envelope)
        try:
            moves = decode_movements(key, name, when, payload)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(ExceptionRecord.of(UNDECODABLE_EVENT, key, "newstore", f"{name}: {exc!r}",
                                               business_date=business_date, payload=payload))
            continue
        for m in moves:
            loc = estate.location_of(m.fulfillment_node_id)
            known = m.sku in estate.by_sku
            if loc is None:
                problems.append(ExceptionRecord.of(
                    UNMAPPED_LOCATION, m.fulfillment_node_id, "newstore",
                    f"fulfillment node {m.fulfillment_node_id!r} is not in the estate", business_date=business_date))
            if not known:
                problems.append(ExceptionRecord.of(
                    UNKNOWN_SKU, f"{m.fulfillment_node_id}:{m.sku}", "newstore",
                    f"SKU {m.sku!r} ({m.movement_type}) at {m.fulfillment_node_id} is unknown to the commerce catalog",
                    business_date=business_date, location_id=loc.id if loc else None, sku=m.sku))
            rows.append({**m.__dict__, "location_id": loc.id if loc else None, "sku_known": known,
                         "source_event": key,
                         "fulfillment_node_id": loc.newstore_node_id if loc else m.fulfillment_node_id})
    df = pd.DataFrame(rows, columns=MOVEMENT_COLUMNS)
    if not df.empty:
        df = df.astype({"quantity": int, "sku_known": bool})
        df["logical_timestamp"] = df["logical_timestamp"].astype("Int64")
    return df, problems
