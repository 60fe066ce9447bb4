"""The Dagster graph as a checked-in JSON snapshot (graph_snapshot.json beside this file): every asset, check,
job, schedule and sensor with the properties that matter to operators. A change to the graph shows up as a
diff in review; an intended change is recorded by regenerating the snapshot:

    PIPELINES_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest pipelines_tests/defs/test_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
UPDATE_ENV = "PIPELINES_UPDATE_SNAPSHOT"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    return type(partitions_def).__name__ if partitions_def is not None else None


def graph_snapshot(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    repo = definitions.get_repository_def()
    assets = {}
    for spec in sorted(definitions.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        assets[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "owners": sorted(spec.owners),
            "kinds": sorted(spec.kinds),
            "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
            "partitions": _partitions(spec.partitions_def),
            "automation_condition": spec.automation_condition is not None,
        }
    checks = []
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        checks.append({"asset": key.asset_key.to_user_string(), "name": key.name, "blocking": spec.blocking,
                       "partitioned": spec.partitions_def is not None})
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        jobs[job.name] = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name, "timezone": s.execution_timezone}
                 for s in sorted(repo.schedule_defs, key=lambda s: s.name)}
    sensors = {s.name: {"interval_s": s.minimum_interval_seconds, "default_status": s.default_status.value}
               for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_graph_matches_snapshot() -> None:
    current = json.dumps(graph_snapshot(defs), indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_ENV) == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(current)
    recorded = SNAPSHOT.read_text()
    if current != recorded:
        diff = "".join(difflib.unified_diff(recorded.splitlines(keepends=True), current.splitlines(keepends=True),
                                            fromfile="graph_snapshot.json (checked in)", tofile="definitions now"))
        raise AssertionError(
            f"The Dagster graph differs from {SNAPSHOT.name}:\n{diff}\nIf the change is intended, regenerate it: "
            f"{UPDATE_ENV}=1 .venv/bin/python -m pytest pipelines_tests/defs/test_graph_snapshot.py")
