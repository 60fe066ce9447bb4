"""The stock sync sensor keeps the always-on sync alive (decisions: pipelines/domain/sync/keep_alive.py).

Exactly one stock_sync_job run is active: when none is, it requests one; `handover_lead_s` before the
running one's window ends, it requests the successor (which takes the sync lock over without a gap);
a run Dagster lists as started that holds no lock has died, so it is reported failed and replaced.
Run keys name the run they follow, so evaluating the same state twice requests nothing new.
"""

from __future__ import annotations

import time

import dagster as dg

from pipelines.defs.resources import StoreOfRecord, SyncSettings
from pipelines.defs.sync.jobs import LIVE_SYNC_TAGS, SENSOR_NAME, stock_sync_job
from pipelines.domain.sync.keep_alive import QUEUED, STARTED, LastRun, SyncRun, decide, needs_lock_check
from pipelines.settings import schedules
from pipelines.sync.lock import sync_running

_STATES = {dg.DagsterRunStatus.QUEUED: QUEUED, dg.DagsterRunStatus.NOT_STARTED: QUEUED,
           dg.DagsterRunStatus.STARTING: QUEUED, dg.DagsterRunStatus.STARTED: STARTED,
           dg.DagsterRunStatus.CANCELING: STARTED}
GRACE_S = 60.0  # a started run takes the lock well within this (definitions load, lock handover)
# Like a cron string, a sensor's minimum interval is taken when the definitions load: read once, at import.
INTERVAL_S = schedules().sync_sensor_interval_s


@dg.sensor(name=SENSOR_NAME, job=stock_sync_job, minimum_interval_seconds=INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Keeps the always-on stock sync alive: one run active, its successor launched before its "
                       "window ends, a run that died restarted.")
def stock_sync_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord,
                      sync_settings: SyncSettings) -> dg.SensorResult | dg.SkipReason:
    instance = context.instance
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=stock_sync_job.name, statuses=list(_STATES)), limit=5)
    active = [SyncRun(r.dagster_run.run_id, _STATES[r.dagster_run.status], r.start_time) for r in records]
    now = time.time()
    lock_held = None
    if len(active) == 1 and needs_lock_check(active[0], now, GRACE_S):
        lock_held = sync_running(store.engine())
    decision = decide(active, _last_run(instance) if not active else None, now,
                      window_s=sync_settings.run_window_s, lead_s=sync_settings.handover_lead_s,
                      grace_s=GRACE_S, lock_held=lock_held)
    if decision.action == "skip":
        return dg.SkipReason(decision.reason)
    if decision.dead_run_id is not None:
        dead = instance.get_run_by_id(decision.dead_run_id)
        if dead is not None:
            instance.report_run_failed(dead, message=decision.reason)
    context.log.info(decision.reason)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=decision.run_key, tags=LIVE_SYNC_TAGS)])


def _last_run(instance: dg.DagsterInstance) -> LastRun | None:
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=stock_sync_job.name), limit=1)
    if not records:
        return None
    r = records[0]
    return LastRun(r.dagster_run.run_id, r.dagster_run.status == dg.DagsterRunStatus.FAILURE, r.end_time)
