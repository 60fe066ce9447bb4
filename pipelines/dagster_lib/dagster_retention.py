"""Bounded Dagster storage for the stock sync: delete its old runs (with their event logs) through
Dagster's public API. Dagster never deletes runs or event logs by itself; its sensor ticks are purged
by the instance's own `retention` settings (dagster.yaml). The always-on sync starts about 100 runs a
day (a 15-minute window each), so this is housekeeping, not a race against >10,000 runs a day."""

from __future__ import annotations

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
            deleted += 1
    return deleted
