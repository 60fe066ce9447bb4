"""Commerce datasets: orders, returns, stock, the stock-change ledger and the catalog of the estate's commerce platform.

The tables keep their `centra_*` names (the reconciliation, the finance report and their history read them) whichever
platform fills them: Centra over its GraphQL Integration API, commercetools over its HTTP API
(`pipelines.connectors.commercetools.reads`), as the same records (`pipelines.defs.commerce_platform`).
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any

import dagster as dg
import pandas as pd

from pipelines.dagster_lib.common import CENTRA_KINDS, ECOMMERCE, FINANCE, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, daily_partitions, window
from pipelines.dagster_lib.snapshots import land_snapshot
from pipelines.defs.commerce_platform import CommerceReads, commerce_reads
from pipelines.defs.resources import CentraResource, CommercetoolsResource, EstateResource, StoreOfRecord
from pipelines.domain.timeutil import business_date, normalise_time
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

# A Centra dataset the e-commerce team owns, one business day a partition.
centra_asset = partial(dg.asset, partitions_def=daily_partitions, owners=ECOMMERCE, kinds=CENTRA_KINDS)


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class _Documents:
    """A Centra document type landed per business day as two tables: the documents and their lines."""

    heads: str  # asset key of the documents' table (and the multi-asset's name)
    lines: str  # asset key of the lines' table
    owners: list[str]
    columns: tuple[list[str], list[str]]  # of `heads`, of `lines`
    read: Callable[[CommerceReads, datetime, datetime], list[Any]]  # the documents created in [start, end)
    # (document, its lines as dicts) -> the head row's fields beyond the document's own
    head_fields: Callable[[Any, Sequence[dict[str, Any]]], dict[str, Any]]
    line_fields: Callable[[Any], dict[str, Any]]  # document -> what each of its line rows takes from it
    metadata: Callable[[pd.DataFrame, pd.DataFrame], tuple[dict[str, Any], dict[str, Any]]]  # heads, lines
    descriptions: tuple[str, str]  # of `heads`, of `lines`


def _split(documents: list[Any], docs: _Documents) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One head row per document (its own fields but the lines, plus `head_fields`) and one row per line."""
    heads, lines = [], []
    for doc in documents:
        row = asdict(doc)
        doc_lines = row.pop("lines")
        heads.append({**row, **docs.head_fields(doc, doc_lines)})
        lines.extend({**ln, **docs.line_fields(doc)} for ln in doc_lines)
    return _frame(heads, docs.columns[0]), _frame(lines, docs.columns[1])


def _documents_asset(docs: _Documents) -> dg.AssetsDefinition:
    """The daily multi-asset landing `docs` (a range of days as one run)."""

    @dg.multi_asset(
        name=docs.heads,
        specs=[dg.AssetSpec(key, group_name="commerce", owners=docs.owners, kinds=CENTRA_KINDS, description=text)
               for key, text in zip((docs.heads, docs.lines), docs.descriptions, strict=True)],
        partitions_def=daily_partitions,
        backfill_policy=SINGLE_RUN,
    )
    def _asset(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
               centra: CentraResource, commercetools: CommercetoolsResource) -> Iterator[dg.MaterializeResult]:
        engine = store.engine()

        def one_day(day: str) -> DayOutput:
            start, end = window(day)
            with commerce_reads(estate.get(), centra, commercetools) as reads:
                documents = docs.read(reads, start, end)
            head_df, line_df = _split(documents, docs)
            replace_partitions(engine, day, {docs.heads: head_df, docs.lines: line_df})
            head_md, line_md = docs.metadata(head_df, line_df)
            return {docs.heads: (head_df, head_md), docs.lines: (line_df, line_md)}

        yield from materialize_days(context, one_day)

    return _asset


def _order_metadata(heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    by_status = heads["status"].value_counts().to_dict() if not heads.empty else {}
    return ({"orders_by_status": dg.MetadataValue.json({k: int(v) for k, v in by_status.items()})},
            {"units_ordered": int(lines["quantity"].sum()) if not lines.empty else 0})


centra_orders = _documents_asset(_Documents(
    heads="centra_orders", lines="centra_order_lines", owners=ECOMMERCE,
    columns=(ORDER_COLUMNS, ORDER_LINE_COLUMNS),
    read=lambda reads, start, end: reads.orders_between(start, end),
    head_fields=lambda o, lines: {"order_id": o.id, "order_number": o.number, "line_count": len(lines),
                                  "created_at": normalise_time(o.created_at)},
    line_fields=lambda o: {"order_number": o.number, "currency": o.currency},
    metadata=_order_metadata,
    descriptions=(
        "Centra orders created on the business day (headers: status, market, price list, currency, totals).",
        "Lines of the Centra orders created on the business day: SKU, quantities (ordered, cancelled, "
        "returned), unit and original price, discount, tax rate."),
))

centra_returns = _documents_asset(_Documents(
    heads="centra_returns", lines="centra_return_lines", owners=FINANCE,
    columns=(RETURN_COLUMNS, RETURN_LINE_COLUMNS),
    read=lambda reads, start, end: reads.returns_between(start, end),
    head_fields=lambda r, lines: {"return_id": r.id, "line_count": len(lines),
                                  "created_at": normalise_time(r.created_at),
                                  "refunded_at": normalise_time(r.refunded_at) if r.refunded_at else None},
    line_fields=lambda r: {"return_id": r.id, "order_number": r.order_number},
    metadata=lambda heads, _lines: (
        {"refunded_total": float(heads["refund_amount"].sum()) if not heads.empty else 0.0}, {}),
    descriptions=(
        "Centra returns created on the business day with their refund state and amounts (partial returns "
        "are separate rows).",
        "Lines of the Centra returns created on the business day: SKU, quantity, unit price, line value and "
        "tax rate."),
))


@centra_asset(
    group_name="commerce",
    description="Centra stock per warehouse and size (physical, allocated, free to allocate, demand). A "
                "snapshot at `snapshot_at`, labelled with the business date; the daily schedule takes it at "
                "the day's cut-off.",
)
def centra_stock_snapshot(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                          centra: CentraResource, commercetools: CommercetoolsResource) -> dg.MaterializeResult:
    day = context.partition_key
    est = estate.get()

    def read() -> pd.DataFrame:
        with commerce_reads(est, centra, commercetools) as reads:
            rows = reads.stock()
        return pd.DataFrame([asdict(r) for r in rows], columns=[
            "warehouse_id", "size_id", "sku", "physical", "allocated", "free_to_allocate", "demand"])

    return land_snapshot(
        context, store, "centra_stock_snapshot", read, "warehouse_id",
        lambda w: est.by_warehouse[w].id if w in est.by_warehouse else None,
        lambda df, taken: {"taken_after_business_day": business_date(taken, BUSINESS_TIMEZONE) > day,
                           "physical_units": int(df["physical"].sum()) if not df.empty else 0})


@centra_asset(
    group_name="commerce",
    backfill_policy=SINGLE_RUN,
    description="Centra's own stock-change ledger (stockChangeConnection) for the business day: every change "
                "per warehouse and size with its signed quantity and description. Reconciliation compares it "
                "with the POS movements, independently of our own sync ledger.",
)
def centra_stock_changes(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                         centra: CentraResource, commercetools: CommercetoolsResource
                         ) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    est = estate.get()

    def one_day(day: str) -> DayOutput:
        start, end = window(day)
        with commerce_reads(est, centra, commercetools) as reads:
            changes = reads.stock_changes(created_from=start, created_to=end)
        rows = [{**asdict(c), "change_id": str(c.id), "created_at": normalise_time(c.created_at),
                 "location_id": est.by_warehouse[c.warehouse_id].id if c.warehouse_id in est.by_warehouse else None}
                for c in changes]
        df = _frame(rows, STOCK_CHANGE_COLUMNS)
        replace_partitions(engine, day, {"centra_stock_changes": df})
        return {"centra_stock_changes": (df, {"net_units": int(df["quantity"].sum()) if not df.empty else 0})}

    yield from materialize_days(context, one_day)


@centra_asset(
    group_name="catalog",
    description="The commerce platform's catalog (it owns product data): every product size (Centra) or variant "
                "(commercetools) with SKU, EAN, product and variant, and whether it is active.",
)
def centra_catalog(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                   centra: CentraResource, commercetools: CommercetoolsResource) -> dg.MaterializeResult:
    day = context.partition_key
    with commerce_reads(estate.get(), centra, commercetools) as reads:
        sizes = reads.product_sizes()
    df = _frame([asdict(s) for s in sizes], CATALOG_COLUMNS)
    replace_partitions(store.engine(), day, {"centra_catalog": df})
    (result,) = materialize_days(context, lambda _day: {"centra_catalog": (df, {
        "inactive_sizes": int((~df["is_active"].astype(bool)).sum()) if not df.empty else 0})})
    return result
