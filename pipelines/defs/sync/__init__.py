"""Stock sync (store -> online): sensor, jobs, schedules (`stock_sync_lag` refreshes itself hourly through
its automation condition). `sync_definitions()` is merged into the entry point."""

from __future__ import annotations

import dagster as dg

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE
from pipelines.defs.sync.assets import stock_sync_lag
from pipelines.defs.sync.jobs import (
    stock_resync_job,
    stock_sync_job,
    stock_sync_replay_job,
    stock_sync_retention_job,
)
from pipelines.defs.sync.sensors import stock_sync_sensor
from pipelines.settings import schedules

# A cron string is taken when the definitions load: read once, at import.
stock_resync_schedule = dg.ScheduleDefinition(
    name="stock_resync_schedule", job=stock_resync_job,
    cron_schedule=schedules().resync_cron, execution_timezone=BUSINESS_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily before the stores open: POS vs Centra physical stock, corrections within budget.")
stock_sync_retention_schedule = dg.ScheduleDefinition(
    name="stock_sync_retention_schedule", job=stock_sync_retention_job, cron_schedule="17 * * * *",
    execution_timezone=BUSINESS_TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: prune sync runs, their event logs and sensor ticks past their retention.")


def sync_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[stock_sync_lag],
        jobs=[stock_sync_job, stock_sync_replay_job, stock_resync_job, stock_sync_retention_job],
        sensors=[stock_sync_sensor],
        schedules=[stock_resync_schedule, stock_sync_retention_schedule],
    )
