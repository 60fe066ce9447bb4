"""`erp_stock_resync_job` run for real (Dagster, in process) against the Business Central simulator through the
production adapter (`BusinessCentralErp`) and the Centra simulator, on SQLite and PostgreSQL. The ERP's item inventory
(the simulator's state, moved by its world API) is the ground truth Centra's DC physical stock must reach."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from pipelines.defs.erp import erp_definitions
from pipelines.defs.erp.stock import erp_stock_resync_job
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CommercetoolsResource,
    ErpSettings,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.estate import Estate, load_estate
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines.simulators.centra import CentraSimulator, CentraState
from pipelines.simulators.erp_world import seed_company
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer
from pipelines.store import make_engine
from pipelines.sync.erp_stock import ERP_STOCK_EVENT
from pipelines.sync.queue import PENDING, _insert, now_text

TOKEN = "erp-stock-job-token"
TENANT, ENV = "t1", "production"


@dataclass
class World:
    engine: Engine
    estate: Estate
    estate_path: Path
    centra: CentraState
    centra_url: str
    bc: BusinessCentralSimulator
    company_id: str
    db_url: str

    @property
    def dc(self):  # noqa: ANN201
        return self.estate.distribution_centre

    def physical(self, sku: str) -> int:
        return self.centra.stock_of(self.dc.centra_warehouse_id, sku)["physical"]

    def inventory(self, sku: str) -> int:
        company = self.bc.state.company(self.company_id)
        return int(next(i for i in company.sets["items"].values() if i["number"] == sku)["inventory"])

    def resources(self, *, configured: bool = True) -> dict[str, Any]:
        bc = BusinessCentralResource(api_url=self.bc.url, tenant=TENANT, environment=ENV, client_id=DEFAULT_CLIENT_ID,
                                     client_secret=DEFAULT_CLIENT_SECRET, company_id=self.company_id) \
            if configured else BusinessCentralResource()
        return {"store": StoreOfRecord(database_url=self.db_url), "estate": EstateResource(path=str(self.estate_path)),
                "centra": CentraResource(base_url=self.centra_url, token=TOKEN),
                "commercetools": CommercetoolsResource(), "businesscentral": bc, "erp_settings": ErpSettings(),
                "sync_settings": SyncSettings(settle_s=0, batch_delay_s=None)}

    def run(self, **kw: Any) -> dict[str, Any]:
        result = erp_stock_resync_job.execute_in_process(resources=self.resources(**kw), raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        return {k: v.value for k, v in output.event_specific_data.metadata.items()}


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(generate_estate(sizes=24, stores=2, seed=11, erp=True)))
    estate = load_estate(path)
    state = BusinessCentralState()
    company = seed_company(state, estate)
    sim = CentraSimulator(estate, tokens=[TOKEN])
    sim.state.set_rate_limits(tier="ENTERPRISE")
    engine = make_engine(db_url)
    server = BackgroundServer(sim.app).start()
    try:
        with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV) as bc:
            yield World(engine, estate, path, sim.state, server.url, bc, company.company_id, db_url)
    finally:
        server.stop()
        engine.dispose()


def _skus(world: World, n: int) -> list[str]:
    mapping = world.estate.erp
    return [s for s in world.estate.skus() if not mapping.is_bundle(s) and world.physical(s) >= 3][:n]


def _ship_one(world: World, sku: str) -> None:
    """The ERP's warehouse posts a shipment of one unit of `sku` (its inventory falls; Centra does not know yet)."""
    state, cid = world.bc.state, world.company_id
    customer = next(iter(state.company(cid).sets["customers"].values()))["number"]
    order = state.create_sales_order(cid, {"customerNumber": customer, "externalDocumentNumber": "W-1",
                                           "salesOrderLines": [{"lineType": "Item", "lineObjectNumber": sku,
                                                                "quantity": 1}]})
    state.ship_order(cid, order["id"], published_late_s=0)


def _queue_pending(world: World, sku: str) -> None:
    stmt, _ = _insert(world.engine, "stock_sync_movements")
    at = "2026-01-01T00:00:00.000000Z"  # long ago: only its status keeps the key busy
    with world.engine.begin() as conn:
        conn.execute(stmt, [{
            "movement_key": f"test:{sku}", "inbox_event_id": 0, "event_name": "test", "event_time": at,
            "logical_timestamp": None, "received_at": at, "fulfillment_node_id": world.dc.newstore_node_id,
            "location_id": world.dc.id, "warehouse_id": world.dc.centra_warehouse_id, "sku": sku,
            "movement_type": "sale", "quantity": -1, "status": PENDING, "batch_id": None, "isolate": 0,
            "attempts": 0, "queued_at": now_text(), "applied_at": None, "error": None}])


def test_erp_inventory_reaches_centra_dc_and_travelling_keys_are_left_alone(world: World) -> None:
    """Kills: a job that does not send what it queued, the DC skipped because only stores are synced from the POS,
    an ERP shipment not yet applied to Centra deducted a second time through the resync, a key with a movement still
    queued overwritten, an ERP bundle (no ERP item of its own) zeroed in Centra."""
    counted, shipped, busy = _skus(world, 3)
    bundle = next(s for s in world.estate.skus() if world.estate.erp.is_bundle(s))
    before = {s: world.physical(s) for s in (counted, shipped, busy, bundle)}
    assert all(world.inventory(s) == before[s] for s in (counted, shipped, busy))  # seeded alike
    world.bc.state.set_inventory(world.company_id, counted, before[counted] + 5)  # a stock count in the ERP
    world.bc.state.set_inventory(world.company_id, busy, before[busy] + 2)
    _ship_one(world, shipped)
    assert world.inventory(shipped) == before[shipped] - 1
    _queue_pending(world, busy)

    meta = world.run()
    assert meta["corrections_queued"] == 1 and meta["skipped_shipped"] == 1 and meta["skipped_active"] == 1
    assert meta["warehouse_id"] == world.dc.centra_warehouse_id and meta["locked"] is True
    assert meta["bundles_skipped"] == len(world.estate.erp.bundle_skus)
    assert world.physical(counted) == before[counted] + 5  # sent by the job's own pass (no live sync running)
    assert world.physical(shipped) == before[shipped]  # for the fulfilment flow to ship, not the resync
    assert world.physical(busy) == before[busy] - 1  # the queued sale went out; the ERP's +2 waits for the next run
    assert world.physical(bundle) == before[bundle]
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT sku, quantity, status FROM stock_sync_movements WHERE event_name = :e"),
                            {"e": ERP_STOCK_EVENT}).all()
    assert [tuple(r) for r in rows] == [(counted, before[counted] + 5, "done")]
    again = world.run()
    assert again["corrections_queued"] == 1 and world.physical(busy) == before[busy] + 2


def test_without_business_central_the_job_does_nothing(world: World) -> None:
    """Kills: a scheduled job that fails every 15 minutes for a retailer without an ERP, or touches the DC anyway."""
    sku, = _skus(world, 1)
    world.bc.state.set_inventory(world.company_id, sku, world.physical(sku) + 5)
    before = world.physical(sku)
    meta = world.run(configured=False)
    assert "not configured" in meta["skipped"] and world.physical(sku) == before


def test_definitions_wire_the_job_and_its_schedule() -> None:
    """Kills: the schedule missing or pointing at another job, the job outside the stock-sync concurrency group
    (one at a time with the replay and the full resync), the ERP assets outside group `erp`."""
    defs = erp_definitions()
    assert list(defs.jobs) == [erp_stock_resync_job] and erp_stock_resync_job.tags == {
        "pipelines/concurrency": "stock-sync"}
    (schedule,) = defs.schedules
    assert schedule.name == "erp_stock_resync_schedule" and schedule.job_name == "erp_stock_resync_job"
    assert schedule.cron_schedule == "*/15 * * * *" and schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    groups = {k.path[-1]: g for a in defs.assets for k, g in a.group_names_by_key.items()}
    assert groups == {name: "erp" for name in ("erp_sales_journal", "erp_store_sales", "erp_sales_orders",
                                                "erp_shipments", "erp_stock_snapshot", "erp_items")}
