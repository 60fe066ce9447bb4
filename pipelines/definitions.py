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
    pos_pickups,
    pos_sale_lines,
    pos_stock_movements,
    pos_stock_snapshot,
)
from pipelines.defs.raw_checks import raw_checks
from pipelines.defs.reconciliation import reconciliation_definitions
from pipelines.defs.resources import default_resources
from pipelines.defs.sync import sync_definitions

daily_assets = [pos_sale_lines, pos_stock_movements, pos_pickups, pos_catalog, centra_orders, centra_returns, centra_stock_changes]
snapshot_assets = [pos_stock_snapshot, centra_stock_snapshot, centra_catalog]
raw_assets = [*daily_assets, *snapshot_assets]

snapshots_job = dg.define_asset_job(
    "snapshots_job",
    selection=dg.AssetSelection.assets(*snapshot_assets),
    partitions_def=daily_partitions,
    description="Take the stock and catalog snapshots of both platforms, labelled with a business date.",
)

daily_datasets_job = dg.define_asset_job(
    "daily_datasets_job",
    selection=dg.AssetSelection.assets(*daily_assets),
    partitions_def=daily_partitions,
    description="Land one business day (or, as a backfill, a range of days in one run) of the event-based "
                "datasets: POS sales, returns and stock movements, Centra orders, returns and stock changes.",
)


def _yesterday(context: dg.ScheduleEvaluationContext) -> str:
    return (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()


@dg.schedule(job=snapshots_job, cron_schedule="1 0 * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def snapshots_at_cutoff_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Right after midnight in the business timezone: the snapshots of the day that just ended."""
    day = _yesterday(context)
    return dg.RunRequest(run_key=f"snapshots-{day}", partition_key=day)


@dg.schedule(job=daily_datasets_job, cron_schedule="30 0 * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_datasets_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 00:30 business time, land yesterday (half an hour of grace for late event deliveries)."""
    day = _yesterday(context)
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day)


def raw_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[newstore_event_inbox, *raw_assets],
        asset_checks=raw_checks,
        jobs=[snapshots_job, daily_datasets_job],
        schedules=[snapshots_at_cutoff_schedule, daily_datasets_schedule],
    )


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """Every domain's definitions merged, with one set of resources."""
    return dg.Definitions.merge(
        raw_definitions(),
        sync_definitions(),
        reconciliation_definitions(),
        dg.Definitions(resources=resources or default_resources()),
    )


defs = build_definitions()

__all__ = ["build_definitions", "defs"]
