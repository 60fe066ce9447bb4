"""The stock sync sensor: a run of stock_sync_job whenever stock work is waiting and none is running.

Work is waiting when a NewStore stock event in the inbox has not been decoded yet, or movements
are pending, or a batch awaits recovery. Cursor: the newest stock event seen (JSON `{"inbox": id}`).
Run key: that id plus the id of the latest sync run, so evaluating the same state twice requests
nothing new, while work left over by a finished run (budget exhausted, a batch to recover) gets a
fresh key.
"""

from __future__ import annotations

import json

import dagster as dg

from pipelines.defs.resources import StoreOfRecord
from pipelines.defs.sync.jobs import SENSOR_NAME, SYNC_TAGS, stock_sync_job
from pipelines.settings import schedules
from pipelines.sync.queue import work_state

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# Like a cron string, a sensor's minimum interval is taken when the definitions load: read once, at import.
INTERVAL_S = schedules().sync_sensor_interval_s


@dg.sensor(name=SENSOR_NAME, job=stock_sync_job, minimum_interval_seconds=INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a stock sync run when POS stock events landed or movements wait, one at a time.")
def stock_sync_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord) -> dg.SensorResult | dg.SkipReason:
    state = work_state(store.engine())
    seen = json.loads(context.cursor)["inbox"] if context.cursor else 0
    cursor = json.dumps({"inbox": max(seen, state.newest_event)})
    if not state.has_work:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new stock events and nothing pending"), cursor=cursor)
    latest = context.instance.get_runs(filters=dg.RunsFilter(job_name=stock_sync_job.name), limit=1)
    if latest and latest[0].status in ACTIVE:
        return dg.SkipReason(f"stock sync run {latest[0].run_id[:8]} is still {latest[0].status.value.lower()}")
    previous = latest[0].run_id[:8] if latest else "none"
    request = dg.RunRequest(run_key=f"stock-sync:{state.newest_event}:{previous}", tags=SYNC_TAGS)
    return dg.SensorResult(run_requests=[request], cursor=cursor)
