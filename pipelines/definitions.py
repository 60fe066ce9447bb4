"""The one Dagster definitions entry point (workspace.yaml loads `pipelines.definitions`)."""


from datetime import timedelta

import dagster as dg

from pipelines.defs.commerce.assets import (
    centra_catalog,
    centra_orders,
    centra_returns,
    centra_stock_changes,
    centra_stock_snapshot,
)
from pipelines.defs.partitions import BUSINESS_TIMEZONE, daily_partitions
from pipelines.defs.pos.assets import (
    newstore_event_inbox,
    pos_catalog,
    pos_sale_lines,
    pos_stock_movements,
    pos_stock_snapshot,
)
from pipelines.defs.raw_checks import raw_checks
from pipelines.defs.resources import default_resources

raw_assets = [pos_sale_lines, pos_stock_movements, pos_stock_snapshot, pos_catalog, centra_orders, centra_returns,
              centra_stock_snapshot, centra_stock_changes, centra_catalog]

raw_datasets_job = dg.define_asset_job(
    "raw_datasets_job",
    selection=dg.AssetSelection.assets(*raw_assets),
    partitions_def=daily_partitions,
    description="Land one business day of every raw dataset (POS and Centra) and run their checks.",
)


@dg.schedule(job=raw_datasets_job, cron_schedule="15 0 * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def raw_datasets_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after midnight in the business timezone, land yesterday's partition (snapshots = cut-off)."""
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"raw-{yesterday}", partition_key=yesterday)


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[newstore_event_inbox, *raw_assets],
        asset_checks=raw_checks,
        jobs=[raw_datasets_job],
        schedules=[raw_datasets_daily_schedule],
        resources=resources or default_resources(),
    )


defs = build_definitions()

__all__ = ["build_definitions", "defs"]
