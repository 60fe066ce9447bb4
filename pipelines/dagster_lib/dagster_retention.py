"""Bounded Dagster storage for a high-frequency job: delete old sync runs (with their event logs)
and old ticks of the sync sensor. `dagster.yaml` retention covers ticks only in whole days, and
Dagster never deletes runs or event logs by itself.

On SQLite, Dagster keeps each run's event log in its own file (`history/runs/<run_id>.db`) and
`delete_run` only empties it: the empty file (~100 KB of schema and pages) would stay forever, so
the shard files of deleted runs are removed here too."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from datetime import datetime

import dagster as dg

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
            remove_event_log_shard(instance, record.dagster_run.run_id)
            deleted += 1
    return deleted


def remove_event_log_shard(instance: dg.DagsterInstance, run_id: str) -> None:
    """Delete the per-run SQLite event-log file of a deleted run (no-op on other storages)."""
    path_for_shard = getattr(instance.event_log_storage, "path_for_shard", None)
    if path_for_shard is None:
        return
    getattr(instance.event_log_storage, "_initialized_dbs", set()).discard(run_id)  # re-create on a later read
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path_for_shard(run_id) + suffix)


def purge_sensor_ticks(instance: dg.DagsterInstance, sensor_name: str, before: datetime,
                       statuses: Iterable[str] = ("SKIPPED", "SUCCESS")) -> int:
    """Delete ticks of one sensor older than `before` whose status is one of `statuses` (failures are kept);
    returns how many sensor origins were purged."""
    purged = 0
    for state in instance.all_instigator_state():
        if state.instigator_type.value != "SENSOR" or state.instigator_name != sensor_name:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        if not ticks:
            continue
        # Dagster's TickStatus enum is not public API: take it from a tick, and its members by name.
        tick_status = type(ticks[0].status)
        instance.schedule_storage.purge_ticks(state.instigator_origin_id, state.selector_id, before.timestamp(),
                                              [tick_status[name] for name in statuses])
        purged += 1
    return purged
