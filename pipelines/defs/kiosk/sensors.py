"""Jobs, schedules and the refresh sensor of the kiosk assets.

- `kiosk_availability_refresh` (sensor, every PIPELINES_KIOSK_REFRESH_S): a run of `kiosk_availability_job`
  (materialise `kiosk_stock_levels`: read every kiosk SKU's stock, push what changed). Online orders allocate stock
  in the commerce platform without passing the stock sync; this is what brings them to the kiosks. It skips while
  Cloudshelf is not configured, and while a refresh is still queued or running.
- `kiosk_catalog_hourly` / `kiosk_catalog_daily_full`: the catalogue, incrementally every hour (what changed in the
  commerce platform reaches the kiosk within the hour) and in full once a day.
- `kiosk_sku_audit_daily`: the SKU audit of the business day, in the morning before the stores open.
"""


import time
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE
from pipelines.defs.kiosk.assets import kiosk_catalog, kiosk_sku_audit, kiosk_stock_levels
from pipelines.defs.resources import CloudshelfResource
from pipelines.settings import cloudshelf

# Like a cron string, a sensor's minimum interval is taken when the definitions load: read once, at import.
REFRESH_S = max(1, int(cloudshelf().refresh_s))
BUSINESS_TZ = ZoneInfo(BUSINESS_TIMEZONE)

kiosk_availability_job = dg.define_asset_job(
    "kiosk_availability_job", selection=dg.AssetSelection.assets(kiosk_stock_levels),
    description="Publish each kiosk store's availability to Cloudshelf: the quantities that changed since the last "
                "publish.")
kiosk_catalog_job = dg.define_asset_job(
    "kiosk_catalog_job", selection=dg.AssetSelection.assets(kiosk_catalog),
    description="Publish the catalogue and the kiosk locations to Cloudshelf (incremental; run config full=true "
                "for everything).")
kiosk_sku_audit_job = dg.define_asset_job(
    "kiosk_sku_audit_job", selection=dg.AssetSelection.assets(kiosk_sku_audit),
    description="The SKU audit between the commerce platform and the kiosk catalogue, for one business day.")

_RUNNING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED]


@dg.sensor(name="kiosk_availability_refresh", job=kiosk_availability_job, minimum_interval_seconds=REFRESH_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every PIPELINES_KIOSK_REFRESH_S: refresh the kiosks' availability from the commerce "
                       "platform (skipped while Cloudshelf is not configured or a refresh still runs).")
def kiosk_availability_refresh(context: dg.SensorEvaluationContext,
                               cloudshelf: CloudshelfResource) -> dg.RunRequest | dg.SkipReason:
    if not cloudshelf.enabled:
        return dg.SkipReason("Cloudshelf is not configured (CLOUDSHELF_API_URL, CLOUDSHELF_API_TOKEN)")
    running = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=kiosk_availability_job.name, statuses=_RUNNING), limit=1)
    if running:
        return dg.SkipReason(f"refresh run {running[0].dagster_run.run_id} has not finished")
    return dg.RunRequest(run_key=f"kiosk-refresh-{int(time.time() // REFRESH_S)}")


kiosk_catalog_hourly = dg.ScheduleDefinition(
    name="kiosk_catalog_hourly", job=kiosk_catalog_job, cron_schedule="40 * * * *",
    execution_timezone=BUSINESS_TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: the catalogue changes (products, variants, prices, purchasable) to Cloudshelf.")
kiosk_catalog_daily_full = dg.ScheduleDefinition(
    name="kiosk_catalog_daily_full", job=kiosk_catalog_job, cron_schedule="10 5 * * *",
    execution_timezone=BUSINESS_TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING,
    run_config={"ops": {"kiosk_catalog": {"config": {"full": True}}}},
    description="Daily before the stores open: the whole catalogue and the locations to Cloudshelf again.")


@dg.schedule(name="kiosk_sku_audit_daily", job=kiosk_sku_audit_job, cron_schedule="30 5 * * *",
             execution_timezone=BUSINESS_TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING)
def kiosk_sku_audit_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 05:30 business time, after the full catalogue publish: the audit of the day, labelled with its date."""
    day = context.scheduled_execution_time.astimezone(BUSINESS_TZ).date().isoformat()
    return dg.RunRequest(run_key=f"kiosk-audit-{day}", partition_key=day)

