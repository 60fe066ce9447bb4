"""Declarative automation: the sensor that evaluates the assets' `automation_condition`s.

Dagster only adds its default automation condition sensor, stopped, when some asset has a condition; this one
is declared so it runs from the start (today only `stock_sync_lag` has a condition: hourly, on cron).
The daily partitioned datasets keep explicit schedules that target *yesterday*: their partitions have
end_offset=1, so a condition (or a schedule built from the job) would target the last partition, today's,
still open (see pipelines/definitions.py).
"""

import dagster as dg

default_automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates every asset's automation condition (stock_sync_lag: hourly).",
)
