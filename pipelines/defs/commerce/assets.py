"""Commerce (Centra) datasets read over the GraphQL Integration API: orders, returns, stock, catalog."""

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from pipelines.dagster_lib.common import CENTRA_KINDS, ECOMMERCE, FINANCE, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, daily_partitions, window
from pipelines.defs.resources import CentraResource, EstateResource, StoreOfRecord
from pipelines.domain.timeutil import business_date, normalise_time, utc_text
from pipelines.store.partitions import replace_partitions

ORDER_COLUMNS = ["order_id", "order_number", "status", "created_at", "store_id", "market_id", "pricelist_id",
                 "currency", "country", "currency_base_rate", "email", "external_id", "grand_total", "tax_total",
                 "discount_total", "shipping_total", "line_count"]
ORDER_LINE_COLUMNS = ["order_number", "line_id", "sku", "ean", "product_number", "quantity", "cancelled_quantity",
                      "returned_quantity", "unit_price", "unit_original_price", "discount_percent", "tax_percent",
                      "line_value", "currency"]
RETURN_COLUMNS = ["return_id", "order_number", "created_at", "status", "currency", "grand_total", "tax_total",
                  "refunded", "refund_amount", "refunded_at", "return_warehouse_id", "external_id", "line_count"]
RETURN_LINE_COLUMNS = ["return_id", "order_number", "line_id", "sku", "quantity", "unit_price", "line_value",
                       "tax_percent"]
STOCK_CHANGE_COLUMNS = ["change_id", "created_at", "warehouse_id", "location_id", "size_id", "sku", "quantity",
                        "description"]
CATALOG_COLUMNS = ["size_id", "sku", "ean", "product_number", "product_name", "product_status", "variant_number",
                   "variant_name", "size_name", "is_active"]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("centra_orders", group_name="commerce", owners=ECOMMERCE, kinds=CENTRA_KINDS,
                     description="Centra orders created on the business day (headers: status, market, "
                                 "price list, currency, totals)."),
        dg.AssetSpec("centra_order_lines", group_name="commerce", owners=ECOMMERCE, kinds=CENTRA_KINDS,
                     description="Lines of the Centra orders created on the business day: SKU, quantities "
                                 "(ordered, cancelled, returned), unit and original price, discount, tax rate."),
    ],
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
)
def centra_orders(context: dg.AssetExecutionContext, store: StoreOfRecord,
                  centra: CentraResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()

    def one_day(day: str) -> DayOutput:
        start, end = window(day)
        with centra.client() as client:
            orders = client.orders_between(start, end)
        heads, lines = [], []
        for o in orders:
            row = asdict(o)
            order_lines = row.pop("lines")
            heads.append({**row, "order_id": o.id, "order_number": o.number, "line_count": len(order_lines),
                          "created_at": normalise_time(o.created_at)})
            lines.extend({**ln, "order_number": o.number, "currency": o.currency} for ln in order_lines)
        head_df, line_df = _frame(heads, ORDER_COLUMNS), _frame(lines, ORDER_LINE_COLUMNS)
        replace_partitions(engine, day, {"centra_orders": head_df, "centra_order_lines": line_df})
        by_status = head_df["status"].value_counts().to_dict() if not head_df.empty else {}
        return {
            "centra_orders": (head_df, {"orders_by_status": dg.MetadataValue.json(
                {k: int(v) for k, v in by_status.items()})}),
            "centra_order_lines": (line_df, {
                "units_ordered": int(line_df["quantity"].sum()) if not line_df.empty else 0}),
        }

    yield from materialize_days(context, one_day)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("centra_returns", group_name="commerce", owners=FINANCE, kinds=CENTRA_KINDS,
                     description="Centra returns created on the business day with their refund state and "
                                 "amounts (partial returns are separate rows)."),
        dg.AssetSpec("centra_return_lines", group_name="commerce", owners=FINANCE, kinds=CENTRA_KINDS,
                     description="Lines of the Centra returns created on the business day: SKU, quantity, "
                                 "unit price, line value and tax rate."),
    ],
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
)
def centra_returns(context: dg.AssetExecutionContext, store: StoreOfRecord,
                   centra: CentraResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()

    def one_day(day: str) -> DayOutput:
        start, end = window(day)
        with centra.client() as client:
            returns = client.returns_between(start, end)
        heads, lines = [], []
        for r in returns:
            row = asdict(r)
            rl = row.pop("lines")
            heads.append({**row, "return_id": r.id, "line_count": len(rl), "created_at": normalise_time(r.created_at),
                          "refunded_at": normalise_time(r.refunded_at) if r.refunded_at else None})
            lines.extend({**ln, "return_id": r.id, "order_number": r.order_number} for ln in rl)
        head_df, line_df = _frame(heads, RETURN_COLUMNS), _frame(lines, RETURN_LINE_COLUMNS)
        replace_partitions(engine, day, {"centra_returns": head_df, "centra_return_lines": line_df})
        return {
            "centra_returns": (head_df, {
                "refunded_total": float(head_df["refund_amount"].sum()) if not head_df.empty else 0.0}),
            "centra_return_lines": (line_df, {}),
        }

    yield from materialize_days(context, one_day)


@dg.asset(
    group_name="commerce",
    partitions_def=daily_partitions,
    owners=ECOMMERCE,
    kinds=CENTRA_KINDS,
    description="Centra stock per warehouse and size (physical, allocated, free to allocate, demand). A "
                "snapshot at `snapshot_at`, labelled with the business date; the daily schedule takes it at "
                "the day's cut-off.",
)
def centra_stock_snapshot(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                          centra: CentraResource) -> dg.MaterializeResult:
    day = context.partition_key
    est = estate.get()
    taken = utc_text(datetime.now(UTC))
    with centra.client() as client:
        rows = client.stock()
    df = pd.DataFrame([asdict(r) for r in rows],
                      columns=["warehouse_id", "size_id", "sku", "physical", "allocated", "free_to_allocate", "demand"])
    df.insert(0, "snapshot_at", taken)
    df.insert(2, "location_id", df["warehouse_id"].map(
        lambda w: est.by_warehouse[w].id if w in est.by_warehouse else None))
    replace_partitions(store.engine(), day, {"centra_stock_snapshot": df})
    (result,) = materialize_days(context, lambda _day: {"centra_stock_snapshot": (df, {
        "snapshot_at": taken,
        "taken_after_business_day": business_date(taken, BUSINESS_TIMEZONE) > day,
        "physical_units": int(df["physical"].sum()) if not df.empty else 0,
    })})
    return result


@dg.asset(
    group_name="commerce",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=ECOMMERCE,
    kinds=CENTRA_KINDS,
    description="Centra's own stock-change ledger (stockChangeConnection) for the business day: every change "
                "per warehouse and size with its signed quantity and description. Reconciliation compares it "
                "with the POS movements, independently of our own sync ledger.",
)
def centra_stock_changes(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                         centra: CentraResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    est = estate.get()

    def one_day(day: str) -> DayOutput:
        start, end = window(day)
        with centra.client() as client:
            changes = client.stock_changes(created_from=start, created_to=end)
        rows = [{**asdict(c), "change_id": str(c.id), "created_at": normalise_time(c.created_at),
                 "location_id": est.by_warehouse[c.warehouse_id].id if c.warehouse_id in est.by_warehouse else None}
                for c in changes]
        df = _frame(rows, STOCK_CHANGE_COLUMNS)
        replace_partitions(engine, day, {"centra_stock_changes": df})
        return {"centra_stock_changes": (df, {"net_units": int(df["quantity"].sum()) if not df.empty else 0})}

    yield from materialize_days(context, one_day)


@dg.asset(
    group_name="catalog",
    partitions_def=daily_partitions,
    owners=ECOMMERCE,
    kinds=CENTRA_KINDS,
    description="The Centra catalog (the commerce platform owns product data): every product size with SKU, "
                "EAN, product and variant, and whether it is active.",
)
def centra_catalog(context: dg.AssetExecutionContext, store: StoreOfRecord,
                   centra: CentraResource) -> dg.MaterializeResult:
    day = context.partition_key
    with centra.client() as client:
        sizes = client.product_sizes()
    df = _frame([asdict(s) for s in sizes], CATALOG_COLUMNS)
    replace_partitions(store.engine(), day, {"centra_catalog": df})
    (result,) = materialize_days(context, lambda _day: {"centra_catalog": (df, {
        "inactive_sizes": int((~df["is_active"].astype(bool)).sum()) if not df.empty else 0})})
    return result
