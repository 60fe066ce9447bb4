"""Is yesterday's finance report there by the deadline? A partitioned check, kept current by a sensor.

Finance reads the report of business day D on the morning of D+1. The check of partition D fails when
D's report has not been written by the `report_deadline_hour` of `reconciliation_settings`
(PIPELINES_RECON_REPORT_DEADLINE_HOUR, default 07:00) business time on D+1, and passes once it is written (or while the deadline has not come). The sensor evaluates
yesterday's partition every few minutes and records an evaluation whenever its outcome changes, so the
check turns red at the deadline without anyone launching anything and green as soon as the report
lands. (Dagster's `build_time_partition_freshness_checks` with the daily partitions' `end_offset=1`
would expect today's still-open partition, and is superseded.)
"""


import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, daily_partitions, yesterday
from pipelines.defs.reconciliation.assets import finance_daily_report
from pipelines.defs.resources import REPORT_DEADLINE_HOUR, ReconciliationSettings

CHECK_NAME = "finance_report_freshness"


def deadline_of(day: str, deadline_hour: int = REPORT_DEADLINE_HOUR, tz: str = BUSINESS_TIMEZONE) -> datetime:
    """When the report of business day `day` must exist: the next day at the deadline hour, business time."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(deadline_hour), tzinfo=ZoneInfo(tz))


def report_written(instance: dg.DagsterInstance, day: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=finance_daily_report.key, asset_partitions=[day]), limit=1)
    return bool(records.records)


def freshness(day: str, written: bool, now: datetime, deadline_hour: int = REPORT_DEADLINE_HOUR) -> tuple[bool, str]:
    """(passed, description) of day's report at `now`."""
    due = deadline_of(day, deadline_hour)
    when = f"due {due:%Y-%m-%d %H:%M} {BUSINESS_TIMEZONE}"
    if written:
        return True, f"the finance report of {day} is written ({when})"
    if now < due:
        return True, f"the finance report of {day} is not written yet; {when}"
    return False, (f"the finance report of {day} is missing: it was {when}. Open the reconciliation_job run of "
                   f"{day} (failed, or blocked by money_mismatches_within_tolerance) and re-materialise the day.")


@dg.asset_check(asset=finance_daily_report, name=CHECK_NAME, partitions_def=daily_partitions,
                description="ERROR: the day's finance report exists by the `report_deadline_hour` of "
                            "`reconciliation_settings` (PIPELINES_RECON_REPORT_DEADLINE_HOUR, default 07:00) business "
                            "time on the next day. Evaluated for yesterday by `finance_report_freshness_sensor`.")
def finance_report_freshness(context: dg.AssetCheckExecutionContext,
                             reconciliation_settings: ReconciliationSettings) -> dg.AssetCheckResult:
    now = datetime.now(ZoneInfo(BUSINESS_TIMEZONE))
    hour = reconciliation_settings.report_deadline_hour
    results = {day: freshness(day, report_written(context.instance, day), now, hour) for day in context.partition_keys}
    failed = sorted(day for day, (ok, _) in results.items() if not ok)
    return dg.AssetCheckResult(passed=not failed, severity=dg.AssetCheckSeverity.ERROR,
                               description="; ".join(text for _, text in results.values()),
                               metadata={"failed_days": dg.MetadataValue.json(failed)})


@dg.sensor(name="finance_report_freshness_sensor", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every 5 minutes: is yesterday's finance report written, or is it past its deadline? "
                       "Records a `finance_report_freshness` evaluation for yesterday whenever the answer changes.")
def finance_report_freshness_sensor(context: dg.SensorEvaluationContext,
                                    reconciliation_settings: ReconciliationSettings) -> dg.SensorResult:
    now = datetime.now(ZoneInfo(BUSINESS_TIMEZONE))
    day = yesterday(now)
    hour = reconciliation_settings.report_deadline_hour
    passed, description = freshness(day, report_written(context.instance, day), now, hour)
    state = json.dumps([day, passed])
    if context.cursor == state:
        return dg.SensorResult(skip_reason=f"{day}: unchanged ({description})", cursor=state)
    evaluation = dg.AssetCheckEvaluation(asset_key=finance_daily_report.key, check_name=CHECK_NAME, passed=passed,
                                         severity=dg.AssetCheckSeverity.ERROR, description=description,
                                         partition=day, metadata={"deadline": deadline_of(day, hour).isoformat()})
    return dg.SensorResult(asset_events=[evaluation], cursor=state)
