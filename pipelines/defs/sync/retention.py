"""Bounded Dagster storage for a high-frequency job: delete old sync runs (with their event logs)
and old ticks of the sync sensor. `dagster.yaml` retention covers ticks only in whole days, and
Dagster never deletes runs or event logs by itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def prune_runs(instance: dg.DagsterInstance, job_names: Iterable[str], before: datetime,
               statuses: Iterable[dg.DagsterRunStatus] = (dg.DagsterRunStatus.SUCCESS,),
               limit: int = 5000) -> int:
    """Delete finished runs of `job_names` last updated before `before` (event logs included)."""
    deleted = 0
    for job in job_names:
        records = instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, statuses=list(statuses), updated_before=before), limit=limit)
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
            deleted += 1
    return deleted


def purge_sensor_ticks(instance: dg.DagsterInstance, sensor_name: str, before: datetime,
                       statuses: Iterable[TickStatus] = (TickStatus.SKIPPED, TickStatus.SUCCESS)) -> int:
    """Delete ticks of one sensor older than `before`; returns how many sensor origins were purged."""
    purged = 0
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name != sensor_name:
            continue
        instance.schedule_storage.purge_ticks(state.instigator_origin_id, state.selector_id,
                                              before.timestamp(), list(statuses))
        purged += 1
    return purged
