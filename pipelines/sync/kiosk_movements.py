"""Kiosk sales into the stock sync's queue: a paid take-home kiosk order (Cloudshelf) deducts its store's own
warehouse in Centra through the same always-on sync as the tills' sales.

`queue_kiosk_sales` writes one `sale` row per order line into `stock_sync_movements` (negative quantity), keyed
by (order id, line id) (`pipelines.domain.flows.kiosk.movement_key`) on the table's unique `movement_key`, so a
redelivered webhook, a polled duplicate or a re-run of the flow never deducts twice. The rows then go the way of
every movement (`pipelines.sync.queue`): mapped to the store's Centra warehouse, ranked (a sale leaving the SKU
at or below the safety stock is oversell-critical and goes first), batched, applied exactly once. An unknown SKU
or location is kept `unmapped` and raised as an exception record, like the tills' movements; a location whose
kind is not synced is kept `skipped`. `inbox_event_id` is the landed Cloudshelf event that triggered the flow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select

from pipelines.domain.exceptions import UNKNOWN_SKU, UNMAPPED_LOCATION, ExceptionRecord
from pipelines.domain.flows.kiosk import Movement
from pipelines.domain.timeutil import normalise_time
from pipelines.estate import Estate
from pipelines.store.db import table
from pipelines.store.inbox import record_exceptions
from pipelines.sync.config import SyncConfig
from pipelines.sync.queue import PENDING, SKIPPED, UNMAPPED, _insert, now_text

EVENT_NAME = "cloudshelf.kiosk_sale"
SALE = "sale"
RETURN = "return"  # a take-home sale undone at the kiosk: its units back on the shelf


def _time(value: str | None, fallback: str) -> str:
    try:
        return normalise_time(value) if value else fallback
    except (TypeError, ValueError):
        return fallback


def queue_kiosk_sales(engine: Engine, estate: Estate, moves: Iterable[Movement], *, inbox_event_id: int,
                      order_id: str, config: SyncConfig | None = None) -> int:
    """Queue the movements (idempotent on their keys); returns how many rows are new."""
    config = config or SyncConfig()
    stamp = now_text()
    values: list[dict[str, Any]] = []
    problems: list[ExceptionRecord] = []
    for m in moves:
        loc = estate.location_of(m.location_id)
        status, error = PENDING, None
        if loc is None:
            status, error = UNMAPPED, "unmapped_location"
            problems.append(ExceptionRecord.of(
                UNMAPPED_LOCATION, f"kiosk:{m.location_id}", "stock_sync",
                f"kiosk location {m.location_id!r} is not in the estate; kiosk order {order_id}'s sale is not synced",
                payload={"order": order_id, "sku": m.sku, "quantity": m.quantity}))
        elif m.sku not in estate.by_sku:
            status, error = UNMAPPED, "unknown_sku"
            problems.append(ExceptionRecord.of(
                UNKNOWN_SKU, f"kiosk:{loc.id}:{m.sku}", "stock_sync",
                f"SKU {m.sku!r} sold on kiosk order {order_id} at {loc.id} is unknown to the commerce catalog; "
                "its stock is not synced", location_id=loc.id, sku=m.sku, payload={"order": order_id}))
        elif (config.location_ids and loc.id not in config.location_ids) or loc.kind not in config.location_kinds:
            status, error = SKIPPED, f"location kind {loc.kind!r} is not synced"
        values.append({
            "movement_key": m.movement_key, "inbox_event_id": inbox_event_id, "event_name": EVENT_NAME,
            "event_time": _time(m.event_time, stamp), "logical_timestamp": None, "received_at": stamp,
            "fulfillment_node_id": loc.newstore_node_id if loc else str(m.location_id)[:64],
            "location_id": loc.id if loc else None, "warehouse_id": loc.centra_warehouse_id if loc else None,
            "sku": m.sku, "movement_type": SALE if m.quantity < 0 else RETURN, "quantity": m.quantity, "status": status, "batch_id": None,
            "isolate": 0, "attempts": 0, "queued_at": stamp, "applied_at": None, "error": error})
    if not values:
        return 0
    moves_tbl = table(engine, "stock_sync_movements")
    stmt, _ = _insert(engine, "stock_sync_movements")
    keys = [v["movement_key"] for v in values]
    with engine.begin() as conn:
        known = set(conn.execute(select(moves_tbl.c.movement_key).where(moves_tbl.c.movement_key.in_(keys)))
                    .scalars())
        fresh = [v for v in values if v["movement_key"] not in known]
        if fresh:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["movement_key"]), fresh)
    if problems and fresh:
        record_exceptions(engine, problems)
    return len(fresh)


def queued(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    """The order's queued kiosk sale rows (status, quantity, ...), for the flow's outcome and tests."""
    tbl = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        rows = conn.execute(select(tbl).where(tbl.c.event_name == EVENT_NAME,
                                              tbl.c.movement_key.like(f"kiosk:{order_id}:%"))).all()
    return [dict(r._mapping) for r in rows]
