"""The raw dataset of the kiosks' transactions: `cloudshelf_orders`, the kiosk orders of each business day read from
Cloudshelf (one row per order line; shaping in `pipelines.domain.kiosk.orders_frame`), with its pandera check.

Daily partitioned like the other raw datasets (`pipelines/defs/commerce/assets.py`): each day replaced in one
transaction (`pipelines.store.partitions.replace_partitions`), a range of days read once and written day by day
(`BackfillPolicy.single_run()`). Cloudshelf has no per-day order query: `orders(sortBy: {updatedAt: DESC})` is paged
(`CloudshelfClient.orders_since`) back to the first day's start, and an order counts on the business day of its
`createdAt`, with its current status and `thirdPartyId` (the Centra order number the order flow wrote back).

Without Cloudshelf (CLOUDSHELF_API_URL unset) the day is written empty and the metadata says
`cloudshelf_configured: false` (an estate without kiosks has no kiosk orders); a URL without a token fails the run.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipelines.connectors.cloudshelf import ids
from pipelines.dagster_lib.checks import rows_check, schema_check
from pipelines.dagster_lib.common import FINANCE, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import daily_partitions, window
from pipelines.defs.resources import CloudshelfResource, EstateResource, StoreOfRecord
from pipelines.domain.flows.kiosk import ORDER_STATUSES
from pipelines.domain.kiosk.orders_frame import (
    DELIVERY,
    ORDER_LINE_COLUMNS,
    PAID_STATUSES,
    TAKE_HOME,
    orders_frame,
)
from pipelines.domain.timeutil import utc_text
from pipelines.settings import cloudshelf as cloudshelf_settings
from pipelines.store.partitions import replace_partitions

ASSET = "cloudshelf_orders"
NO_TOKEN = "CLOUDSHELF_API_URL is set but CLOUDSHELF_API_TOKEN is not: the kiosk orders cannot be read"


class CloudshelfOrderLines(pa.DataFrameModel):
    """The stored partition of `cloudshelf_orders` (ERROR: kiosk transactions are money)."""

    order_id: Series[str] = pa.Field(str_length={"min_value": 1})
    line_id: Series[str] = pa.Field(str_length={"min_value": 1})
    status: Series[str] = pa.Field(isin=list(ORDER_STATUSES))
    fulfilment_kind: Series[str] = pa.Field(isin=[TAKE_HOME, DELIVERY])
    quantity: Series[int] = pa.Field(ge=0)
    unit_price: Series[float] = pa.Field(ge=0)
    line_total: Series[float] = pa.Field(ge=0, le=1e9)
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    created_at: Series[str] = pa.Field(str_matches=r"^\d{4}-\d\d-\d\dT")

    class Config:
        coerce = True
        unique = ["order_id", "line_id"]

    @pa.dataframe_check(error="line_total != quantity * unit_price (to the cent)")
    def totals_add_up(cls, df):  # noqa: N805
        return (df["quantity"] * df["unit_price"] - df["line_total"]).abs() <= 0.005 + 1e-9


def _metadata(df: pd.DataFrame, configured: bool) -> dict:
    paid = df[df["status"].isin(PAID_STATUSES)] if not df.empty else df
    by_kind = paid.groupby("fulfilment_kind")["order_id"].nunique().to_dict() if not paid.empty else {}
    by_status = df.groupby("status")["order_id"].nunique().to_dict() if not df.empty else {}
    return {"cloudshelf_configured": configured,
            "orders": int(df["order_id"].nunique()) if not df.empty else 0,
            "orders_by_status": dg.MetadataValue.json({k: int(v) for k, v in by_status.items()}),
            "paid_orders_by_kind": dg.MetadataValue.json({k: int(v) for k, v in by_kind.items()}),
            "paid_units": int(paid["quantity"].sum()) if not paid.empty else 0}


@dg.asset(
    name=ASSET,
    group_name="kiosk",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=FINANCE,
    kinds={"cloudshelf", "sql"},
    description="The Cloudshelf kiosk orders placed on the business day (by `createdAt`), one row per order line: "
                "status, the store (estate location id), take_home or delivery (PIPELINES_KIOSK_TAKE_HOME), SKU, "
                "quantity, unit price, line total, currency and the Centra order number written back "
                "(`thirdPartyId`). The reconciliation's kiosk rules and the finance report's kiosk section read it.",
)
def cloudshelf_orders(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                      cloudshelf: CloudshelfResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    tz = estate.get().business_timezone
    days = sorted(context.partition_keys)
    configured = bool(cloudshelf.base_url)
    if configured and not cloudshelf.enabled:
        raise dg.Failure(NO_TOKEN)
    orders = []
    if configured:
        since = utc_text(window(days[0])[0])
        with cloudshelf.client() as client:
            orders = client.orders_since(since)
        context.log.info("cloudshelf_orders: %d order(s) updated since %s", len(orders), since)
    take_home = cloudshelf_settings().take_home

    def one_day(day: str) -> DayOutput:
        df = orders_frame(orders, day, tz, take_home=take_home, location_of=ids.location_of)[ORDER_LINE_COLUMNS]
        replace_partitions(engine, day, {ASSET: df})
        return {ASSET: (df, _metadata(df, configured))}

    yield from materialize_days(context, one_day)


cloudshelf_orders_checks = [
    schema_check(ASSET, CloudshelfOrderLines, severity=dg.AssetCheckSeverity.ERROR),
    rows_check(
        ASSET, "cloudshelf_orders_mapped",
        "Every kiosk order line maps to a store of the estate and a SKU of ours (WARN: such a line cannot be "
        "reconciled with Centra).",
        "location_id.isnull() or sku.isnull()", severity=dg.AssetCheckSeverity.WARN,
        columns=["order_id", "line_id", "location_gid", "location_id", "sku", "quantity"],
        explain=lambda n: f"{n} line(s) with an unmapped location or a variant not of ours" if n else "all mapped",
    ),
]
