"""The ERP stock resync (issue 15): every `Schedules.erp_stock_cron` (PIPELINES_ERP_STOCK_CRON, default every 15
minutes) the ERP's on hand is compared with the commerce platform's physical stock in the DC warehouse and the
differences are queued as counts for the stock sync (`pipelines.sync.erp_stock`), defined like the full resync
(`pipelines/defs/sync/jobs.py`): tag `stock-sync` (one at a time with replay and resync), the queued counts sent by
the always-on sync, or by the job itself in one pass when no sync holds the lock.

Without Business Central configured, or without an `erp` section in the estate, a run does nothing and its metadata
says why."""


from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE
from pipelines.defs.commerce_platform import stock_target
from pipelines.defs.erp.datasets import erp_not_configured, open_erp
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CommercetoolsResource,
    ErpSettings,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.defs.sync.jobs import SYNC_TAGS, _send_queued
from pipelines.settings import schedules
from pipelines.sync.erp_stock import queue_erp_stock


class ErpStockConfig(dg.Config):
    quiet_s: float | None = Field(default=None, description=(
        "Keys with a movement or an ERP shipment this recent are left to the next run (empty: the stock_quiet_s of "
        "erp_settings, PIPELINES_ERP_STOCK_QUIET_S)."))


@dg.op(out=dg.Out(dg.Nothing), tags=SYNC_TAGS,
       description="Compare the ERP's on hand with the commerce platform's physical stock in the DC warehouse and "
                   "queue the differences as counts for the stock sync (keys with movements in flight or recent ERP "
                   "shipments left alone).")
def resync_erp_stock(context: dg.OpExecutionContext, config: ErpStockConfig, store: StoreOfRecord,
                     estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                     businesscentral: BusinessCentralResource, erp_settings: ErpSettings,
                     sync_settings: SyncSettings) -> dg.Output:
    est = estate.get()
    why = erp_not_configured(businesscentral, est)
    if why:
        context.log.info("ERP stock resync skipped: %s", why)
        return dg.Output(None, metadata={"skipped": why})
    quiet_s = erp_settings.stock_quiet_s if config.quiet_s is None else config.quiet_s
    with stock_target(est, centra, commercetools) as target, open_erp(businesscentral) as erp:
        report = queue_erp_stock(store.engine(), est, target, erp, sync_settings.config(), quiet_s=quiet_s,
                                 beside_running_sync=True)
    context.log.info(f"ERP stock resync: {report.as_dict()}")
    meta: dict[str, Any] = {**report.as_dict(), "quiet_s": quiet_s,
                            "samples": dg.MetadataValue.json(report.samples)}
    return _send_queued(context, store, estate, centra, commercetools, sync_settings, "erp_stock", meta)


@dg.job(executor_def=dg.in_process_executor, tags=SYNC_TAGS,
        description="ERP stock to the commerce platform's DC warehouse: the ERP's on hand vs the platform's physical "
                    "stock, corrections queued as counts and sent within the stock sync's rate budget.")
def erp_stock_resync_job() -> None:
    resync_erp_stock()


# A cron string is taken when the definitions load: read once, at import.
erp_stock_resync_schedule = dg.ScheduleDefinition(
    name="erp_stock_resync_schedule", job=erp_stock_resync_job,
    cron_schedule=schedules().erp_stock_cron, execution_timezone=BUSINESS_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes by default (PIPELINES_ERP_STOCK_CRON): the ERP's DC stock to the commerce "
                "platform.")
