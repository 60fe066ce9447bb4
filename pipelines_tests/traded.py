"""`Traded`: a running devstack (simulators, intake, store of record) with the Dagster resources that point at
it, shared by the raw-asset, range-backfill and end-to-end tests."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.pos.stream_health import StreamHealthSettings
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CloudshelfResource,
    CommercetoolsResource,
    ErpSettings,
    EstateResource,
    FinanceReportFiles,
    NewStoreResource,
    OrderFlowSettings,
    ReconciliationSettings,
    RecoverySettings,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.defs.sync.jobs import stock_sync_job
from pipelines.defs.sync.sensors import stock_sync_sensor
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
            "commercetools": CommercetoolsResource(**({
                "api_url": env["COMMERCETOOLS_API_URL"], "auth_url": env["COMMERCETOOLS_AUTH_URL"],
                "client_id": env["COMMERCETOOLS_CLIENT_ID"], "client_secret": env["COMMERCETOOLS_CLIENT_SECRET"]}
                if "COMMERCETOOLS_API_URL" in env else {})),
            "cloudshelf": CloudshelfResource(**({"base_url": env["CLOUDSHELF_API_URL"], "token": env["CLOUDSHELF_API_TOKEN"]}
                                                if "CLOUDSHELF_API_URL" in env else {})),
            "newstore": NewStoreResource(base_url=env["NEWSTORE_API_URL"], tenant=stack.tenant,
                                         client_id=env["NEWSTORE_CLIENT_ID"],
                                         client_secret=env["NEWSTORE_CLIENT_SECRET"]),
            "reconciliation_settings": reconciliation or ReconciliationSettings(),
            "sync_settings": SyncSettings(),
            "recovery_settings": RecoverySettings(grace_s=0.0),
            "order_flow_settings": OrderFlowSettings(run_window_s=0),
            "stream_health_settings": StreamHealthSettings(),
            "finance_reports": FinanceReportFiles(reports_dir=str(stack.home / "reports")),
            "businesscentral": BusinessCentralResource(**({
                "api_url": env["BUSINESSCENTRAL_API_URL"], "tenant": env["BUSINESSCENTRAL_TENANT"],
                "environment": env["BUSINESSCENTRAL_ENVIRONMENT"], "company_id": env["BUSINESSCENTRAL_COMPANY_ID"],
                "client_id": env["BUSINESSCENTRAL_CLIENT_ID"], "client_secret": env["BUSINESSCENTRAL_CLIENT_SECRET"]}
                if "BUSINESSCENTRAL_API_URL" in env else {})),
            "erp_settings": ErpSettings(),
        }

    def materialize(self, assets, **kwargs) -> dg.ExecuteInProcessResult:  # noqa: ANN001
        with dg.instance_for_test() as instance:
            return dg.materialize(assets, resources=self.resources, instance=instance, raise_on_error=False,
                                  **kwargs)

    def table(self, name: str, day: str = DAY):
        return read_partition(self.stack.engine, name, day)


def physical_mismatches(stack: Stack) -> list[tuple]:
    """Centra's store stock vs the ground truth (every movement and count), per store and SKU; units of
    click-and-collect orders still waiting for pickup are in both (Centra: allocated, POS: on hand)."""
    out = []
    for store in stack.estate.stores:
        node, wid = store.newstore_node_id, store.centra_warehouse_id
        for sku in stack.estate.skus():
            expected = stack.truth.expected_stock(node, sku, stack.estate.initial_stock[node][sku])
            actual = stack.centra.state.stock_of(wid, sku)["physical"]
            if actual != max(0, expected):
                out.append((node, sku, expected, actual))
    return out


def run_requested_sync(instance: dg.DagsterInstance, resources: dict, window_s: float = 0.0) -> int:
    """No sync run is active: the sync sensor requests one, and it runs here in process for `window_s`
    (0: one pass), as the daemon would launch it; the movements it applied."""
    result = stock_sync_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    (request,) = result.run_requests
    run = stock_sync_job.execute_in_process(
        instance=instance, resources=resources, tags={**request.tags, "dagster/run_key": request.run_key},
        run_config={"ops": {"sync_store_stock": {"config": {"window_s": window_s}}}})
    assert run.success
    (output,) = [e for e in run.all_events if e.event_type_value == "STEP_OUTPUT"]
    return output.event_specific_data.metadata["movements_applied"].value
