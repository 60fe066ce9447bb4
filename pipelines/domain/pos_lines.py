"""From landed NewStore events to the POS sale-lines dataset, with exception records (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import pandas as pd

from pipelines.domain.estate_mapping import map_to_estate
from pipelines.domain.exceptions import UNDECODABLE_EVENT, ExceptionRecord
from pipelines.domain.newstore_events import PosLine, decode_return, decode_store_sale, is_store_sale
from pipelines.estate import Estate

POS_LINE_COLUMNS = [
    "transaction_id", "line_no", "kind", "fulfillment_node_id", "location_id", "sku", "ean", "sku_known",
    "quantity", "unit_price", "discount", "tax", "net_amount", "currency", "event_time", "original_order_ref",
    "original_transaction_id", "source_event",
]

SALE_EVENTS = ("order.opened", "return.processed")


def build_pos_lines(events: Iterable[tuple[str, str, str, dict[str, Any]]], estate: Estate,
                    business_date: str) -> tuple[pd.DataFrame, list[ExceptionRecord]]:
    """events: (dedup_key, event_name, event_time, envelope). Later events of one transaction win."""
    latest: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}
    problems: list[ExceptionRecord] = []
    for key, name, when, envelope in events:
        payload = envelope.get("payload", envelope)
        if name == "order.opened" and not is_store_sale(payload):
            continue
        tid = str(payload.get("id", key))
        latest[(name, tid)] = (key, when, payload)

    lines: list[dict[str, Any]] = []
    for (name, _tid), (key, when, payload) in sorted(latest.items(), key=lambda kv: kv[1][1] or ""):
        try:
            decoded: list[PosLine] = decode_store_sale(payload, when) if name == "order.opened" \
                else decode_return(payload, when)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # bounds: ValueError
            problems.append(ExceptionRecord.of(UNDECODABLE_EVENT, key, "newstore", f"{name}: {exc!r}",
                                               business_date=business_date, payload=payload))
            continue
        for line in decoded:
            mapped = map_to_estate(estate, line.fulfillment_node_id, line.sku, line.kind, business_date,
                                   payload={"transaction_id": line.transaction_id, "event": key})
            problems += mapped.problems
            lines.append({**asdict(line), "location_id": mapped.location_id, "sku_known": mapped.sku_known,
                          "source_event": key, "fulfillment_node_id": mapped.node_id})
    df = pd.DataFrame(lines, columns=POS_LINE_COLUMNS)
    return df.astype({"line_no": int, "quantity": int, "sku_known": bool}) if not df.empty else df, problems
