"""Daily reconciliation for finance. `reconciliation_definitions()` is merged into the entry point, with the
restatement of days whose events landed late (`restatement.py`)."""

import dagster as dg

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, yesterday
from pipelines.defs.reconciliation.assets import (
    finance_daily_report,
    finance_month_end_rollup,
    reconciliation_findings,
)
from pipelines.defs.reconciliation.checks import reconciliation_checks
from pipelines.defs.reconciliation.freshness import finance_report_freshness_sensor
from pipelines.defs.reconciliation.restatement import restatement_job, restatement_sensor
from pipelines.settings import schedules

# A cron string is taken when the definitions load: the hour is read once, at import.
RECON_HOUR = schedules().recon_hour

reconciliation_job = dg.define_asset_job(
    "reconciliation_job",
    selection=dg.AssetSelection.assets(reconciliation_findings, finance_daily_report),
    description="Reconcile one business day (or a range, as a backfill) and write the finance report.",
)

month_end_job = dg.define_asset_job(
    "month_end_job", selection=dg.AssetSelection.assets(finance_month_end_rollup),
    description="Roll the daily reconciliation up for a month.",
)


@dg.schedule(job=reconciliation_job, cron_schedule=f"0 {RECON_HOUR} * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def reconciliation_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At PIPELINES_RECON_HOUR (default 06:00) business time: reconcile yesterday."""
    day = yesterday(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"recon-{day}", partition_key=day)


@dg.schedule(job=month_end_job, cron_schedule=f"30 {RECON_HOUR} 1 * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def month_end_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """On the 1st, after the daily run: roll up the month that just ended."""
    month = yesterday(context.scheduled_execution_time)[:7] + "-01"
    return dg.RunRequest(run_key=f"month-{month}", partition_key=month)


def reconciliation_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[reconciliation_findings, finance_daily_report, finance_month_end_rollup],
        asset_checks=reconciliation_checks,
        jobs=[reconciliation_job, month_end_job, restatement_job],
        schedules=[reconciliation_daily_schedule, month_end_schedule],
        sensors=[finance_report_freshness_sensor, restatement_sensor],
    )
