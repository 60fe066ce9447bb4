"""Dagster definitions only (the dg `defs_module`): assets grouped by domain, check instances, jobs,
schedules, sensors and resources. The library code they share is in `pipelines.dagster_lib`."""
