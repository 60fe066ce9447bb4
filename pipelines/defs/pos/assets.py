"""POS (NewStore) datasets: store sales and returns, stock movements, stock per location and SKU."""

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from typing import Any

import dagster as dg
import pandas as pd
from sqlalchemy import Engine

from pipelines.dagster_lib.common import NEWSTORE_KINDS, RETAIL_OPERATIONS, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import daily_partitions, window
from pipelines.dagster_lib.snapshots import land_snapshot
from pipelines.defs.intake import newstore_event_inbox
from pipelines.defs.resources import EstateResource, NewStoreResource, StoreOfRecord
from pipelines.domain.newstore_events import PICKUP_COMPLETED, is_pickup
from pipelines.domain.pos_lines import SALE_EVENTS, build_pos_lines
from pipelines.domain.stock_movements import STOCK_EVENTS, build_movements
from pipelines.domain.timeutil import utc_text
from pipelines.store.catalog_export import accepted_by
from pipelines.store.inbox import record_exceptions
from pipelines.store.inbox_orders import InboxOrders
from pipelines.store.partitions import read_partition, read_sql, replace_partitions

# A POS dataset, one business day a partition; one built from the landed event stream (a range of days as
# one run) is an `inbox_asset`.
pos_asset = partial(dg.asset, partitions_def=daily_partitions, owners=RETAIL_OPERATIONS, kinds=NEWSTORE_KINDS)
inbox_asset = partial(pos_asset, group_name="pos", backfill_policy=SINGLE_RUN, deps=[newstore_event_inbox])


def read_inbox_day(engine: Engine, names: tuple[str, ...], day: str) -> list[tuple[str, str, str, dict]]:
    """NewStore inbox events of the given names whose event time falls on the business day."""
    start, end = window(day)
    placeholders = ", ".join(f"'{n}'" for n in names)
    raw = read_sql(
        engine,
        "SELECT dedup_key, event_name, event_time, payload FROM inbox_events "
        f"WHERE source = 'newstore' AND event_name IN ({placeholders}) "  # noqa: S608 - constant names
        "AND event_time >= :start AND event_time < :end ORDER BY event_time, id",
        start=utc_text(start), end=utc_text(end),
    )
    return [(r.dedup_key, r.event_name, r.event_time, json.loads(r.payload)) for r in raw.itertuples()]


def land_decoded_events(context: dg.AssetExecutionContext, engine: Engine, key: str, names: tuple[str, ...],
                        decode: Callable[[list[tuple[str, str, str, dict]], str], tuple[pd.DataFrame, list]],
                        metadata: Callable[[pd.DataFrame], dict[str, Any]]) -> Iterator[dg.MaterializeResult]:
    """For each business day of the run: `decode(events, day)` the day's inbox events of `names` into the rows
    of `key` and exception records, and store both. Each day's metadata: events read, exceptions raised and
    `metadata(rows)`."""

    def one_day(day: str) -> DayOutput:
        events = read_inbox_day(engine, names, day)
        df, problems = decode(events, day)
        replace_partitions(engine, day, {key: df})
        record_exceptions(engine, problems)
        context.log.info("%s %s: %d rows from %d events, %d exception(s)", key, day, len(df), len(events),
                         len(problems))
        return {key: (df, {"events_read": len(events), "exceptions_raised": len(problems), **metadata(df)})}

    yield from materialize_days(context, one_day)


def _sale_metadata(df: pd.DataFrame) -> dict[str, Any]:
    sales = df[df["kind"] == "sale"] if not df.empty else df
    return {"units_sold": int(sales["quantity"].sum()) if not sales.empty else 0,
            "unknown_sku_lines": int((~df["sku_known"]).sum()) if not df.empty else 0}


def _movement_metadata(df: pd.DataFrame) -> dict[str, Any]:
    by_type = df.groupby("movement_type")["quantity"].count().to_dict() if not df.empty else {}
    return {"movements_by_type": dg.MetadataValue.json({k: int(v) for k, v in by_type.items()})}


@inbox_asset(
    description="Store sales and returns at line level for one business day, decoded from NewStore's "
                "`order.opened` (IN_STORE_HANDOVER items) and `return.processed` events in the inbox. "
                "Unknown SKUs and unmapped stores are kept (flagged) and raised as exception records.",
)
def pos_sale_lines(context: dg.AssetExecutionContext, store: StoreOfRecord,
                   estate: EstateResource) -> Iterator[dg.MaterializeResult]:
    yield from land_decoded_events(
        context, store.engine(), "pos_sale_lines", SALE_EVENTS,
        lambda events, day: build_pos_lines(events, estate.get(), day), _sale_metadata)


@inbox_asset(
    description="Stock-affecting POS events of the business day as movements per (location, SKU): sales, "
                "return restocks, receipts, adjustments and ship-from-store shipments of store orders as signed "
                "deltas, stock counts as absolute quantities, each with event time and NewStore's logical "
                "timestamp where the event has one.",
)
def pos_stock_movements(context: dg.AssetExecutionContext, store: StoreOfRecord,
                        estate: EstateResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    yield from land_decoded_events(
        context, engine, "pos_stock_movements", STOCK_EVENTS,
        lambda events, day: build_movements(events, estate.get(), day, InboxOrders(engine)),
        _movement_metadata)


@pos_asset(
    group_name="pos",
    description="POS stock per location and SKU (on hand, ATP, allocations, safety stock) read from "
                "NewStore's stocked-products API. A snapshot: it holds the stock at `snapshot_at`, labelled "
                "with the business date it was taken for; the daily schedule takes it at the day's cut-off.",
)
def pos_stock_snapshot(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                       newstore: NewStoreResource) -> dg.MaterializeResult:
    est = estate.get()

    def read() -> pd.DataFrame:
        with newstore.client() as client:
            rows = client.stocked_products()
        cols = ["fulfillment_node_id", "sku", "on_hand", "atp", "allocations", "safety_stock"]
        return pd.DataFrame([asdict(r) for r in rows], columns=None if rows else cols)[cols].copy()

    return land_snapshot(
        context, store, "pos_stock_snapshot", read, "fulfillment_node_id",
        lambda n: loc.id if (loc := est.location_of(n)) else None,
        lambda df, _taken: {"locations": int(df["fulfillment_node_id"].nunique()),
                            "units_on_hand": int(df["on_hand"].sum()) if not df.empty else 0})


@pos_asset(
    group_name="catalog",
    backfill_policy=SINGLE_RUN,
    deps=[pos_stock_snapshot, pos_sale_lines, "newstore_catalog_export"],
    description="The POS catalog for the day: every SKU the POS stocks (from the stock snapshot), sold or "
                "took back (from the sale lines), or holds in its product catalog (accepted by NewStore's import "
                "of Centra's catalog by the day's end), with its NewStore product id and how many locations "
                "hold it.",
)
def pos_catalog(context: dg.AssetExecutionContext, store: StoreOfRecord) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()

    def one_day(day: str) -> DayOutput:
        stock = read_partition(engine, "pos_stock_snapshot", day, ["sku", "fulfillment_node_id", "on_hand"])
        sold = read_partition(engine, "pos_sale_lines", day, ["sku"])
        per_sku = stock.groupby("sku").agg(locations=("fulfillment_node_id", "nunique"),
                                           on_hand_total=("on_hand", "sum"))
        extra = sorted(set(sold["sku"]) - set(per_sku.index))
        listed = sorted(set(accepted_by(engine, utc_text(window(day)[1]))) - set(per_sku.index) - set(extra))
        if extra or listed:
            per_sku = pd.concat([per_sku, pd.DataFrame({"locations": 0, "on_hand_total": 0},
                                                       index=pd.Index([*extra, *listed], name="sku"))])
        df = per_sku.reset_index().rename(columns={"index": "sku"})
        df.insert(1, "product_id", df["sku"])  # NewStore product_id is the SKU in this integration
        df = df.astype({"locations": int, "on_hand_total": int})
        replace_partitions(engine, day, {"pos_catalog": df})
        return {"pos_catalog": (df, {"sold_but_not_stocked": len(extra), "catalog_only": len(listed)})}

    yield from materialize_days(context, one_day)


@inbox_asset(
    description="Click-and-collect pickups completed in a store on the business day: NewStore's "
                "`fulfillment_request.items_completed` events of in-store-pickup orders, with the online order "
                "number each belongs to (read from NewStore's order API).",
)
def pos_pickups(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                newstore: NewStoreResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    est = estate.get()
    cols = ["fulfillment_request_id", "order_id", "order_number", "fulfillment_node_id", "location_id",
            "service_level", "items", "completed_at", "source_event"]

    def one_day(day: str) -> DayOutput:
        events = [e for e in read_inbox_day(engine, (PICKUP_COMPLETED,), day) if is_pickup(e[3]["payload"])]
        per_request: dict[tuple[str, str], dict] = {}
        for key, _name, when, envelope in events:
            p = envelope["payload"]
            row = per_request.setdefault((p["id"], p["order_id"]), {
                "fulfillment_request_id": p["id"], "order_id": p["order_id"], "order_number": None,
                "fulfillment_node_id": p.get("fulfillment_location_id"), "service_level": p.get("service_level"),
                "items": 0, "completed_at": when, "source_event": key})
            row["items"] += len(p.get("items") or [])
            row["completed_at"] = max(row["completed_at"], when)
        if per_request:
            with newstore.client() as client:
                for row in per_request.values():
                    row["order_number"] = client.get_order(row["order_id"]).origin_id or None
                    loc = est.location_of(row["fulfillment_node_id"])
                    row["location_id"] = loc.id if loc else None
        df = pd.DataFrame(list(per_request.values()), columns=cols)
        replace_partitions(engine, day, {"pos_pickups": df})
        return {"pos_pickups": (df, {"events_read": len(events)})}

    yield from materialize_days(context, one_day)
