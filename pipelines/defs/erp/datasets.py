"""The ERP's datasets (issue 15, group `erp`): what the ERP holds, landed per business day for the reconciliation
(`pipelines/domain/reconciliation/rules/erp.py` compares them with the commerce platform's datasets).

* `erp_sales_orders`: the ERP's sales orders whose order date is the day (daily documents, like `centra_orders`).
* `erp_shipments`: the ERP's shipments posted on the day, each with its units and value (from the ERP order's lines,
  tax included) and `in_commerce`: whether the commerce platform shows it (read at load time through the order
  flows' `CommercePlatform.order(ref)`): a completed shipment carrying the fulfilment flow's marker
  `erp:<shipment number>` in its message, or else completed shipments whose units cover the ERP's shipped units of
  the order (bundle lines count their components' units, through the estate's `erp` mapping).
* `erp_stock_snapshot`: the ERP's on-hand mapped to commerce SKUs (`ErpMapping.item_of`; bundles excluded: their
  stock is their components'), a snapshot taken at the cut-off with the other snapshots (`snapshots_job`).
* `erp_items`: every ERP item and item variant (a snapshot): the mapping orphans are commerce SKUs without one.

Each day is replaced in one transaction (`replace_partitions`); a range of days of the documents is read once and
written day by day (`BackfillPolicy.single_run()`). They are written against `pipelines.domain.erp.ports.ErpSystem`
(Business Central: `BusinessCentralErp`). Without Business Central configured (BUSINESSCENTRAL_API_URL and the client
credentials) or without an `erp` section in the estate, a run writes nothing and says why (`erp_configured: false`).
"""

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipelines.connectors.businesscentral.erp import BusinessCentralErp
from pipelines.dagster_lib.checks import schema_check
from pipelines.dagster_lib.common import ECOMMERCE, FINANCE, INTEGRATION, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import daily_partitions
from pipelines.defs.commerce_platform import flow_commerce
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    OrderFlowSettings,
    StoreOfRecord,
)
from pipelines.domain.erp.mapping import ErpMapping
from pipelines.domain.erp.model import ITEM, ErpItem, ErpOrder, ErpShipment, ErpStockLevel
from pipelines.domain.erp.ports import ErpSystem
from pipelines.domain.flows.model import CommerceOrder
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate
from pipelines.store.erp_datasets import ITEM_COLUMNS, ORDER_COLUMNS, SHIPMENT_COLUMNS, STOCK_COLUMNS
from pipelines.store.partitions import replace_partitions

GROUP = "erp"
ERP_KINDS = {"businesscentral", "pandas", "sql"}
ORDERS, SHIPMENTS, STOCK, ITEMS = "erp_sales_orders", "erp_shipments", "erp_stock_snapshot", "erp_items"
SHIPMENT_MARKER = "erp:{number}"  # what the fulfilment flow writes on the commerce shipment (its message)

# The stored columns (sql/migrations/0018_erp_datasets.sql): the reconciliation's frames plus what explains them.
ORDER_TABLE = [c for c in ORDER_COLUMNS if c != "business_date"] + ["status"]
SHIPMENT_TABLE = [c for c in SHIPMENT_COLUMNS if c != "business_date"] + ["order_number", "currency", "checked_at"]
STOCK_TABLE = ["snapshot_at"] + [c for c in STOCK_COLUMNS if c != "business_date"]
ITEM_TABLE = [c for c in ITEM_COLUMNS if c != "business_date"]


def erp_not_configured(businesscentral: BusinessCentralResource, estate: Estate) -> str | None:
    """Why the ERP datasets cannot be landed (None: they can)."""
    if not businesscentral.enabled:
        return ("Business Central is not configured: set BUSINESSCENTRAL_API_URL, BUSINESSCENTRAL_CLIENT_ID and "
                "BUSINESSCENTRAL_CLIENT_SECRET")
    if estate.erp is None:
        return "the estate file has no `erp` section: the retailer runs no ERP"
    return None


@contextmanager
def open_erp(businesscentral: BusinessCentralResource) -> Iterator[ErpSystem]:
    """The ERP behind the configured resource (Business Central's adapter; another ERP swaps this adapter)."""
    with businesscentral.client() as client:
        yield BusinessCentralErp(client)


@contextmanager
def open_commerce(estate: Estate, centra: CentraResource, commercetools: CommercetoolsResource
                  ) -> Iterator[Callable[[str], CommerceOrder | None]]:
    """The commerce platform's current order by reference (the order flows' read, without the Order API)."""
    platform = flow_commerce(estate, centra, commercetools, OrderFlowSettings())
    try:
        yield platform.order
    finally:
        platform.client.close()


# -- pure shaping (no I/O) ---------------------------------------------------------------------------------------


def orders_frame(orders: Iterable[ErpOrder], day: str) -> pd.DataFrame:
    """One row per ERP sales order dated `day` (ORDER_TABLE)."""
    rows = [{"order_id": o.order_id, "order_number": o.number, "external_ref": o.external_ref or None,
             "currency": o.currency, "customer_number": o.customer_number,
             "total_including_tax": round(float(o.total_including_tax), 2), "total_tax": round(float(o.total_tax), 2),
             "discount_amount": round(float(o.discount_amount), 2), "line_count": len(o.lines), "status": o.status}
            for o in orders if o.order_date == day]
    return pd.DataFrame(rows, columns=ORDER_TABLE)


def _order_of(shipment: ErpShipment, orders: Sequence[ErpOrder]) -> ErpOrder | None:
    """The ERP order a shipment ships: the one numbered like its order_number among those carrying its ref."""
    return next((o for o in orders if o.number == shipment.order_number), orders[0] if len(orders) == 1 else None)


def shipment_value(shipment: ErpShipment, order: ErpOrder | None) -> float:
    """The shipped units' value, tax included: each shipment line's quantity at its order line's amount per unit
    (after the line discount). 0 when the order is not found."""
    if order is None:
        return 0.0
    by_seq = {ln.sequence: ln for ln in order.lines}
    value = 0.0
    for sl in shipment.lines:
        ln = by_seq.get(sl.sequence)
        if ln is not None and ln.quantity:
            value += float(sl.quantity) * float(ln.amount_including_tax) / float(ln.quantity)
    return round(value, 2)


def _units_per(sku: str | None, mapping: ErpMapping | None) -> float:
    """ERP item units one commerce unit of `sku` ships as (a bundle: its components' quantities)."""
    if sku is not None and mapping is not None and sku in mapping.bundles:
        return float(sum(c.quantity for c in mapping.bundles[sku]))
    return 1.0


def has_marker(message: str | None, shipment_number: str) -> bool:
    marker = SHIPMENT_MARKER.format(number=shipment_number)
    return bool(message) and marker in re.split(r"[\s,;|]+", str(message).strip())


def shown_in_commerce(shipment: ErpShipment, order: ErpOrder | None, commerce: CommerceOrder | None,
                      mapping: ErpMapping | None) -> bool:
    """Whether the commerce order shows the ERP shipment: a completed shipment carrying its marker, or else its
    completed shipments' units (in ERP units) cover the ERP order's shipped item units."""
    if commerce is None:
        return False
    done = [s for s in commerce.shipments if s.completed]
    if any(has_marker(s.message, shipment.number) for s in done):
        return True
    if order is None:
        return False
    erp_shipped = sum(float(ln.shipped_quantity) for ln in order.lines if ln.line_type == ITEM)
    sku_of = {ln.line_id: ln.sku for ln in commerce.lines}
    shown = sum(sl.quantity * _units_per(sku_of.get(sl.order_line_id), mapping) for s in done for sl in s.lines)
    return erp_shipped > 0 and shown + 1e-9 >= erp_shipped


def shipments_frame(shipments: Iterable[ErpShipment], day: str, orders_of: Callable[[str], Sequence[ErpOrder]],
                    commerce_order: Callable[[str], CommerceOrder | None], mapping: ErpMapping | None,
                    checked_at: str) -> pd.DataFrame:
    """One row per ERP shipment posted on `day` (SHIPMENT_TABLE). `orders_of(ref)` and `commerce_order(ref)` are
    called once per order reference."""
    erp_cache: dict[str, Sequence[ErpOrder]] = {}
    commerce_cache: dict[str, CommerceOrder | None] = {}
    rows = []
    for s in shipments:
        if s.posting_date != day:
            continue
        ref = s.external_ref or ""
        if ref and ref not in erp_cache:
            erp_cache[ref] = tuple(orders_of(ref))
            commerce_cache[ref] = commerce_order(ref)
        order = _order_of(s, erp_cache.get(ref, ()))
        rows.append({"shipment_id": s.shipment_id, "shipment_number": s.number, "external_ref": ref or None,
                     "units": int(round(sum(float(ln.quantity) for ln in s.lines))),
                     "value": shipment_value(s, order), "tracking_number": s.tracking_number, "carrier": s.carrier,
                     "in_commerce": shown_in_commerce(s, order, commerce_cache.get(ref), mapping),
                     "order_number": s.order_number, "currency": order.currency if order else None,
                     "checked_at": checked_at})
    return pd.DataFrame(rows, columns=SHIPMENT_TABLE)


def stock_frame(levels: Iterable[ErpStockLevel], skus: Iterable[str], mapping: ErpMapping,
                snapshot_at: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The ERP's on-hand per commerce SKU (STOCK_TABLE) and what was left out (`bundles`, `not_in_erp`,
    `ambiguous`). A SKU reads the level of its item and variant; when the ERP keeps stock per item only (Business
    Central's API v2.0 has no stock per variant), a SKU mapped to a variant reads its item's level only when no
    other SKU maps to that item (else it is `ambiguous` and left out: a shared item's stock cannot be split)."""
    by_key = {(lv.number, lv.variant_code or None): int(lv.on_hand) for lv in levels}
    skus = list(skus)
    refs = {sku: mapping.item_of(sku) for sku in skus if not mapping.is_bundle(sku)}
    per_item = Counter(r.number for r in refs.values())
    left_out = {"bundles": len(skus) - len(refs), "not_in_erp": 0, "ambiguous": 0}
    rows = []
    for sku, ref in refs.items():
        on_hand = by_key.get((ref.number, ref.variant_code or None))
        if on_hand is None and ref.variant_code and (ref.number, None) in by_key:
            if per_item[ref.number] > 1:
                left_out["ambiguous"] += 1
                continue
            on_hand = by_key[(ref.number, None)]
        if on_hand is None:
            left_out["not_in_erp"] += 1
            continue
        rows.append({"snapshot_at": snapshot_at, "sku": sku, "item_number": ref.number,
                     "variant_code": ref.variant_code, "on_hand": on_hand})
    return pd.DataFrame(rows, columns=STOCK_TABLE), left_out


def items_frame(items: Iterable[ErpItem]) -> pd.DataFrame:
    rows = sorted({(i.number, i.variant_code or None) for i in items}, key=lambda k: (k[0], k[1] or ""))
    return pd.DataFrame([{"number": n, "variant_code": v} for n, v in rows], columns=ITEM_TABLE)


# -- the assets ----------------------------------------------------------------------------------------------------


def _skipped(context: dg.AssetExecutionContext, keys: Sequence[str], reason: str) -> Iterator[dg.MaterializeResult]:
    """Nothing landed (and nothing erased): each asset says why."""
    context.log.info("ERP datasets not landed: %s", reason)
    for key in keys:
        yield dg.MaterializeResult(asset_key=key, metadata={"erp_configured": False, "reason": reason,
                                                           "dagster/row_count": 0})


def _money_by_currency(df: pd.DataFrame, column: str, currency: str = "currency") -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.json({})
    sums = df.groupby(df[currency].fillna("").replace("", "(local)"))[column].sum()
    return dg.MetadataValue.json({str(k): round(float(v), 2) for k, v in sums.items()})


@dg.asset(
    name=ORDERS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=FINANCE,
    kinds=ERP_KINDS,
    description="The ERP's (Business Central's) sales orders whose order date is the business day: order id and "
                "number, the commerce order reference they carry (`external_ref`, externalDocumentNumber), currency "
                "(\"\" = the company's local currency), customer, totals including tax, tax, discount and line "
                "count. The reconciliation compares them with the commerce orders (missing, duplicated, totals, "
                "tax, discounts, currency). Nothing is landed without Business Central or an estate `erp` section.",
)
def erp_sales_orders(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                     businesscentral: BusinessCentralResource) -> Iterator[dg.MaterializeResult]:
    reason = erp_not_configured(businesscentral, estate.get())
    if reason:
        yield from _skipped(context, [ORDERS], reason)
        return
    days = sorted(context.partition_keys)
    with open_erp(businesscentral) as erp:
        orders = list(erp.orders_between(days[0], days[-1]))
    context.log.info("erp_sales_orders: %d ERP order(s) dated %s..%s", len(orders), days[0], days[-1])
    engine = store.engine()

    def one_day(day: str) -> DayOutput:
        df = orders_frame(orders, day)
        replace_partitions(engine, day, {ORDERS: df})
        refs = df["external_ref"].dropna()
        return {ORDERS: (df, {"erp_configured": True, "orders": len(df),
                              "without_external_ref": int(df["external_ref"].isna().sum()),
                              "external_refs_duplicated": int(refs.duplicated().sum()),
                              "total_including_tax_by_currency": _money_by_currency(df, "total_including_tax")})}

    yield from materialize_days(context, one_day)


@dg.asset(
    name=SHIPMENTS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=ECOMMERCE,
    kinds={"businesscentral", "centra", "sql"},
    description="The ERP's (Business Central's) shipments posted on the business day: shipment id and number, the "
                "commerce order reference, shipped units, their value (from the ERP order's lines, tax included), "
                "tracking number and carrier (shipping agent), and `in_commerce`: whether the commerce platform "
                "showed the shipment when the day was landed (a completed shipment carrying the fulfilment flow's "
                "marker `erp:<shipment number>`, or completed shipments covering the ERP's shipped units). A shipment "
                "not in commerce means the customer got no notification. Nothing is landed without Business Central.",
)
def erp_shipments(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                  businesscentral: BusinessCentralResource, centra: CentraResource,
                  commercetools: CommercetoolsResource) -> Iterator[dg.MaterializeResult]:
    est = estate.get()
    reason = erp_not_configured(businesscentral, est)
    if reason:
        yield from _skipped(context, [SHIPMENTS], reason)
        return
    days = sorted(context.partition_keys)
    engine = store.engine()
    checked_at = utc_text(datetime.now(UTC))
    frames: dict[str, pd.DataFrame] = {}
    with open_erp(businesscentral) as erp, open_commerce(est, centra, commercetools) as commerce_order:
        shipments = list(erp.shipments_between(days[0], days[-1]))
        context.log.info("erp_shipments: %d ERP shipment(s) posted %s..%s", len(shipments), days[0], days[-1])
        for day in days:
            frames[day] = shipments_frame(shipments, day, erp.orders_by_external_ref, commerce_order, est.erp,
                                          checked_at)

    def one_day(day: str) -> DayOutput:
        df = frames[day]
        replace_partitions(engine, day, {SHIPMENTS: df})
        missing = df[~df["in_commerce"].astype(bool)] if not df.empty else df
        return {SHIPMENTS: (df, {"erp_configured": True, "shipments": len(df),
                                 "units": int(df["units"].sum()) if not df.empty else 0,
                                 "value_by_currency": _money_by_currency(df, "value"),
                                 "not_in_commerce": len(missing),
                                 "not_in_commerce_numbers": dg.MetadataValue.json(
                                     missing["shipment_number"].head(20).tolist()),
                                 "checked_at": checked_at})}

    yield from materialize_days(context, one_day)


@dg.asset(
    name=STOCK,
    group_name=GROUP,
    partitions_def=daily_partitions,
    owners=INTEGRATION,
    kinds=ERP_KINDS,
    description="The ERP's (Business Central's) on-hand per commerce SKU, mapped through the estate's `erp` items "
                "(default: the item numbered like the SKU; bundles left out: their stock is their components'). A "
                "snapshot at `snapshot_at`, labelled with the business date; the daily snapshots schedule takes it "
                "at the day's cut-off. The reconciliation compares it with the commerce DC warehouse's physical "
                "stock. Nothing is landed without Business Central or an estate `erp` section.",
)
def erp_stock_snapshot(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                       businesscentral: BusinessCentralResource) -> Iterator[dg.MaterializeResult]:
    est = estate.get()
    reason = erp_not_configured(businesscentral, est)
    if reason:
        yield from _skipped(context, [STOCK], reason)
        return
    assert est.erp is not None
    taken = utc_text(datetime.now(UTC))
    with open_erp(businesscentral) as erp:
        levels = erp.stock()
    df, left_out = stock_frame(levels, est.skus(), est.erp, taken)
    replace_partitions(store.engine(), context.partition_key, {STOCK: df})
    yield from materialize_days(context, lambda _day: {STOCK: (df, {
        "erp_configured": True, "snapshot_at": taken, "skus": len(df),
        "on_hand_units": int(df["on_hand"].sum()) if not df.empty else 0,
        "left_out": dg.MetadataValue.json(left_out)})})


@dg.asset(
    name=ITEMS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    owners=ECOMMERCE,
    kinds=ERP_KINDS,
    description="Every item and item variant in the ERP (Business Central), a snapshot labelled with the business "
                "date (variant_code empty: the item itself). The reconciliation's mapping orphans are active "
                "commerce SKUs (and bundle components) without one. Nothing is landed without Business Central.",
)
def erp_items(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
              businesscentral: BusinessCentralResource) -> Iterator[dg.MaterializeResult]:
    reason = erp_not_configured(businesscentral, estate.get())
    if reason:
        yield from _skipped(context, [ITEMS], reason)
        return
    with open_erp(businesscentral) as erp:
        df = items_frame(erp.items())
    replace_partitions(store.engine(), context.partition_key, {ITEMS: df})
    yield from materialize_days(context, lambda _day: {ITEMS: (df, {
        "erp_configured": True, "items": int(df["number"].nunique()) if not df.empty else 0,
        "variants": int(df["variant_code"].notna().sum()) if not df.empty else 0})})


# -- the checks on the stored partitions --------------------------------------------------------------------------


class ErpSalesOrders(pa.DataFrameModel):
    """The stored partition of `erp_sales_orders` (ERROR: the order reconciliation's money)."""

    order_id: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    order_number: Series[str] = pa.Field(str_length={"min_value": 1})
    external_ref: Series[str] = pa.Field(nullable=True)
    currency: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{0,10}$")
    total_including_tax: Series[float] = pa.Field(ge=0, le=1e9)
    total_tax: Series[float] = pa.Field(ge=0, le=1e9)
    discount_amount: Series[float] = pa.Field(ge=0, le=1e9)
    line_count: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True


class ErpShipments(pa.DataFrameModel):
    """The stored partition of `erp_shipments` (ERROR: a shipment the customer was not told of is money)."""

    shipment_id: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    shipment_number: Series[str] = pa.Field(str_length={"min_value": 1})
    external_ref: Series[str] = pa.Field(nullable=True)
    units: Series[int] = pa.Field(ge=0)
    value: Series[float] = pa.Field(ge=0, le=1e9)
    in_commerce: Series[bool]

    class Config:
        coerce = True


class ErpStock(pa.DataFrameModel):
    """The stored partition of `erp_stock_snapshot` (WARN: the stock comparison is not money)."""

    sku: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    item_number: Series[str] = pa.Field(str_length={"min_value": 1})
    on_hand: Series[int]

    class Config:
        coerce = True


class ErpItems(pa.DataFrameModel):
    """The stored partition of `erp_items` (WARN)."""

    number: Series[str] = pa.Field(str_length={"min_value": 1})
    variant_code: Series[str] = pa.Field(nullable=True)

    class Config:
        coerce = True
        unique = ["number", "variant_code"]


ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
erp_dataset_checks = [schema_check(ORDERS, ErpSalesOrders, severity=ERROR),
                      schema_check(SHIPMENTS, ErpShipments, severity=ERROR),
                      schema_check(STOCK, ErpStock, severity=WARN),
                      schema_check(ITEMS, ErpItems, severity=WARN)]

erp_dataset_assets = [erp_sales_orders, erp_shipments, erp_stock_snapshot, erp_items]
erp_document_assets = [erp_sales_orders, erp_shipments]  # daily documents: with the daily datasets (00:30)
erp_snapshot_assets = [erp_stock_snapshot, erp_items]  # snapshots: with the other snapshots at the cut-off

__all__ = ["erp_dataset_assets", "erp_dataset_checks", "erp_document_assets", "erp_items", "erp_sales_orders",
           "erp_shipments", "erp_snapshot_assets", "erp_stock_snapshot", "open_erp"]
