"""The daily store sales journal in the ERP (issue 15): `erp_sales_journal` posts each business day's store sales to
the ERP, one general journal document per (store, tax rate); `erp_store_sales` reads back what the ERP has posted,
as the reconciliation's `downstream_sales`. The logic is `pipelines.erp.journal` (I/O) over
`pipelines.domain.erp.journal` (pure).

Both do nothing (their metadata says why) when Business Central is not configured or the estate has no `erp`
section (or no `erp.sales_journal` accounts)."""


from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandera.pandas as pa
from pandera.typing import Series

from pipelines.dagster_lib.checks import schema_check
from pipelines.dagster_lib.common import FINANCE, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days
from pipelines.dagster_lib.partitions import daily_partitions
from pipelines.defs.erp.datasets import ERP_KINDS, GROUP, erp_not_configured, open_erp
from pipelines.defs.pos.assets import pos_sale_lines
from pipelines.defs.resources import (
    BusinessCentralResource,
    EstateResource,
    ReconciliationSettings,
    StoreOfRecord,
)
from pipelines.erp.journal import POSTINGS, STORE_SALES, post_sales_journal, read_store_sales
from pipelines.estate import Estate


def _why_off(businesscentral: BusinessCentralResource, est: Estate) -> str | None:
    why = erp_not_configured(businesscentral, est)
    if why is None and est.erp is not None and est.erp.sales_journal is None:
        why = "the estate's erp section has no sales_journal accounts"
    return why


def _skipped(context: dg.AssetExecutionContext, why: str) -> dg.MaterializeResult:
    context.log.info("nothing done: %s", why)
    return dg.MaterializeResult(metadata={"skipped": why, "days": len(context.partition_keys)})


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=FINANCE,
    kinds=ERP_KINDS,
    deps=[pos_sale_lines],
    description="The business day's store sales posted to the ERP's general ledger, one journal document per (store, "
                "tax rate) grouped exactly as the reconciliation's store-sales rule groups the POS sales: revenue "
                "credited (net + discount), discount debited, VAT credited with the rate's tax code, the store's "
                "balancing account debited with what it took in (net + tax), on the estate's `erp.sales_journal` "
                "accounts. Document numbers `POS<yymmdd>-<store>-<rate bp>`; posting is idempotent on them. Table "
                "erp_sales_postings (replaced per business date) holds the groups the ERP has; a group without a tax "
                "code or refused by the ERP is an exception record.",
)
def erp_sales_journal(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                      businesscentral: BusinessCentralResource,
                      reconciliation_settings: ReconciliationSettings) -> Iterator[dg.MaterializeResult]:
    est = estate.get()
    why = _why_off(businesscentral, est)
    if why:
        yield _skipped(context, why)
        return
    engine = store.engine()
    with open_erp(businesscentral) as erp:
        def one_day(day: str) -> DayOutput:
            df, report = post_sales_journal(engine, est, erp, day,
                                            tolerance=reconciliation_settings.tolerance())
            context.log.info("erp_sales_journal %s: %s", day, report.as_dict())
            extra: dict[str, Any] = {**report.as_dict(), "problems": dg.MetadataValue.md(
                "\n".join(f"- {p}" for p in report.problems[:20]) or "none")}
            return {POSTINGS: (df, extra)}

        for result in materialize_days(context, one_day):
            yield dg.MaterializeResult(metadata=result.metadata)


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    owners=FINANCE,
    kinds=ERP_KINDS,
    deps=[erp_sales_journal],
    description="The business day's store sales as the ERP has posted them, read back from its general ledger (our "
                "`POS` documents of the day): per (store, tax rate) gross, discount, tax and net from the accounts, "
                "count from the posted group; exactly the reconciliation's `downstream_sales` columns (table "
                "erp_store_sales, replaced per business date). A document posted but absent from the ERP's ledger is "
                "absent here, so the reconciliation finds the day's store_sales_mismatch.",
)
def erp_store_sales(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                    businesscentral: BusinessCentralResource) -> Iterator[dg.MaterializeResult]:
    est = estate.get()
    why = _why_off(businesscentral, est)
    if why:
        yield _skipped(context, why)
        return
    engine = store.engine()
    with open_erp(businesscentral) as erp:
        def one_day(day: str) -> DayOutput:
            df, report = read_store_sales(engine, est, erp, day)
            context.log.info("erp_store_sales %s: %s", day, report.as_dict())
            extra: dict[str, Any] = {**report.as_dict(), "missing_documents": dg.MetadataValue.json(
                report.missing_in_erp[:50])}
            return {STORE_SALES: (df, extra)}

        for result in materialize_days(context, one_day):
            yield dg.MaterializeResult(metadata=result.metadata)


# -- the checks on the stored partitions --------------------------------------------------------------------------


class ErpSalesPostings(pa.DataFrameModel):
    """The stored partition of `erp_sales_postings` (ERROR: what was posted to the ledger is money). One document
    per (store, tax rate); the ERP's document numbers are at most 20 characters."""

    location_id: Series[str] = pa.Field(str_length={"min_value": 1})
    tax_rate: Series[float] = pa.Field(ge=0, le=1)
    document_number: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 20}, unique=True)
    count: Series[int] = pa.Field(ge=0)
    gross: Series[float] = pa.Field(ge=-1e9, le=1e9)
    discount: Series[float] = pa.Field(ge=-1e9, le=1e9)
    tax: Series[float] = pa.Field(ge=-1e9, le=1e9)
    net: Series[float] = pa.Field(ge=-1e9, le=1e9)

    class Config:
        coerce = True
        unique = ["location_id", "tax_rate"]


class ErpStoreSales(pa.DataFrameModel):
    """The stored partition of `erp_store_sales` (ERROR: the store-sales rule's downstream side)."""

    location_id: Series[str] = pa.Field(str_length={"min_value": 1})
    tax_rate: Series[float] = pa.Field(ge=0, le=1)
    count: Series[int] = pa.Field(ge=0)
    gross: Series[float] = pa.Field(ge=-1e9, le=1e9)
    discount: Series[float] = pa.Field(ge=-1e9, le=1e9)
    tax: Series[float] = pa.Field(ge=-1e9, le=1e9)
    net: Series[float] = pa.Field(ge=-1e9, le=1e9)

    class Config:
        coerce = True
        unique = ["location_id", "tax_rate"]


erp_journal_checks = [
    schema_check("erp_sales_journal", ErpSalesPostings, severity=dg.AssetCheckSeverity.ERROR, table_name=POSTINGS),
    schema_check("erp_store_sales", ErpStoreSales, severity=dg.AssetCheckSeverity.ERROR, table_name=STORE_SALES),
]
