"""Stock sync (store -> online): sensor, jobs, schedules. `sync_definitions()` is merged into the entry point."""

import dagster as dg


def sync_definitions() -> dg.Definitions:
    return dg.Definitions()
