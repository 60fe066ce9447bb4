"""`Traded`: a running devstack (simulators, intake, store of record) with the Dagster resources that point at
it, shared by the raw-asset, range-backfill and end-to-end tests."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.resources import (
    CentraResource,
    EstateResource,
    FinanceReportFiles,
    NewStoreResource,
    ReconciliationSettings,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.devstack import Stack
from pipelines.store.partitions import read_partition

DAY = "2026-11-20"


class Traded:
    def __init__(self, stack: Stack, reconciliation: ReconciliationSettings | None = None):
        self.stack = stack
        env = stack.env()
        self.resources = {
            "store": StoreOfRecord(database_url=stack.database_url),
            "estate": EstateResource(path=str(stack.estate_file)),
            "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
            "newstore": NewStoreResource(base_url=env["NEWSTORE_API_URL"], tenant=stack.tenant,
                                         client_id=env["NEWSTORE_CLIENT_ID"],
                                         client_secret=env["NEWSTORE_CLIENT_SECRET"]),
            "reconciliation_settings": reconciliation or ReconciliationSettings(),
            "sync_settings": SyncSettings(),
            "finance_reports": FinanceReportFiles(reports_dir=str(stack.home / "reports")),
        }

    def materialize(self, assets, **kwargs) -> dg.ExecuteInProcessResult:  # noqa: ANN001
        with dg.instance_for_test() as instance:
            return dg.materialize(assets, resources=self.resources, instance=instance, raise_on_error=False,
                                  **kwargs)

    def table(self, name: str, day: str = DAY):
        return read_partition(self.stack.engine, name, day)
