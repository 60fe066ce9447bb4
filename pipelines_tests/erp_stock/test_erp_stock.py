"""ERP stock to the commerce platform's DC warehouse (`pipelines.sync.erp_stock.queue_erp_stock`): the ERP's on hand
reaches Centra's DC physical stock through the regular sync, without undoing what is still travelling.

Real Centra simulator over loopback, real store of record (SQLite and PostgreSQL), the real sync; the ERP is the
in-memory port of `erp_fakes` (its on hand is the ground truth the DC must end at)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from pipelines.connectors.centra import CentraClient
from pipelines.domain.erp.model import ErpShipment, ErpShipmentLine
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate
from pipelines.simulators.centra import CentraSimulator, CentraState
from pipelines.simulators.serving import BackgroundServer
from pipelines.store import make_engine
from pipelines.sync import StockSync, SyncConfig
from pipelines.sync.erp_stock import ERP_STOCK_EVENT, queue_erp_stock
from pipelines.sync.lock import SyncBusy, sync_lock
from pipelines_tests.erp_stock.erp_fakes import FakeErp, erp_estate

TOKEN = "erp-stock-token"


@dataclass
class World:
    engine: Engine
    estate: Estate
    centra: CentraState
    server: BackgroundServer
    erp: FakeErp

    @property
    def dc(self):  # noqa: ANN201
        return self.estate.distribution_centre

    def client(self) -> CentraClient:
        return CentraClient(self.server.url, TOKEN, max_attempts=1, backoff_base_s=0.01)

    def physical(self, sku: str) -> int:
        return self.centra.stock_of(self.dc.centra_warehouse_id, sku)["physical"]

    def resync(self, **kw):  # noqa: ANN003, ANN201
        with self.client() as client:
            return queue_erp_stock(self.engine, self.estate, client, self.erp, SyncConfig(settle_s=0), **kw)

    def send(self) -> None:
        with self.client() as client:
            StockSync(self.engine, self.estate, client, SyncConfig(settle_s=0, poll_s=0, batch_delay_s=None)).run(
                window_s=0)

    def queued(self) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT sku, warehouse_id, quantity, status FROM stock_sync_movements WHERE event_name = :e "
                "ORDER BY id"), {"e": ERP_STOCK_EVENT})]


@pytest.fixture
def world(db_url: str, small_estate_dict: dict) -> Iterator[World]:
    plain = [s["sku"] for v in small_estate_dict["catalog"][2]["variants"] for s in v["sizes"]]
    estate = erp_estate(small_estate_dict, variant_sku=plain[0])
    sim = CentraSimulator(estate, tokens=[TOKEN])
    sim.state.set_rate_limits(tier="ENTERPRISE")
    engine = make_engine(db_url)
    server = BackgroundServer(sim.app).start()
    try:
        yield World(engine, estate, sim.state, server, FakeErp())
    finally:
        server.stop()
        engine.dispose()


def _item(world: World, sku: str) -> tuple[str, str | None]:
    ref = world.estate.erp.item_of(sku)
    return ref.number, ref.variant_code


def _plain_skus(world: World, n: int) -> list[str]:
    mapping = world.estate.erp
    return [s for s in world.estate.skus() if not mapping.is_bundle(s) and s not in mapping.items][:n]


def test_erp_inventory_reaches_the_dc_exactly_through_the_sync(world: World) -> None:
    """Kills: the DC left out because only stores are synced from the POS (location_kinds), a variant-mapped item not
    mapped back to its SKU, a delta sent where the ERP's absolute on hand is meant, a bundle's own ERP stock written
    (its stock is its components'), an item the ERP does not report zeroed, a second run queueing again."""
    up, down, same = _plain_skus(world, 3)
    variant_sku = next(iter(world.estate.erp.items))
    bundle = next(s for s in world.estate.skus() if world.estate.erp.is_bundle(s))
    before = {s: world.physical(s) for s in (up, down, same, variant_sku, bundle)}
    world.erp.levels = {_item(world, up): before[up] + 7, _item(world, down): max(0, before[down] - 2),
                        _item(world, same): before[same], _item(world, variant_sku): before[variant_sku] + 3,
                        _item(world, bundle): before[bundle] + 50}
    report = world.resync()
    assert report.warehouse_id == world.dc.centra_warehouse_id and report.locked
    assert report.keys_compared == 4 and report.differing == 3 and report.corrections_queued == 3
    assert report.not_in_erp == len(world.estate.skus()) - report.bundles_skipped - 4
    world.send()
    assert world.physical(up) == before[up] + 7
    assert world.physical(down) == max(0, before[down] - 2)
    assert world.physical(variant_sku) == before[variant_sku] + 3
    assert world.physical(same) == before[same]
    assert world.physical(bundle) == before[bundle]
    other = _plain_skus(world, 5)[4]
    assert world.physical(other) == world.estate.initial_stock[world.dc.newstore_node_id].get(other, 0)
    assert {status for *_, status in world.queued()} == {"done"}
    again = world.resync()
    assert again.differing == 0 and again.corrections_queued == 0


def test_a_key_the_erp_shipped_in_the_quiet_window_is_left_alone(world: World) -> None:
    """Kills: a resync that lowers the DC by a shipment the ERP posted while the commerce platform has not yet been
    told (the fulfilment flow would then deduct it a second time)."""
    shipped, drifted = _plain_skus(world, 2)
    before = {s: world.physical(s) for s in (shipped, drifted)}
    number, variant = _item(world, shipped)
    world.erp.levels = {(number, variant): before[shipped] - 1, _item(world, drifted): before[drifted] + 1}
    world.erp.shipments = [ErpShipment("sh-1", "S-SHPT1001", "S-ORD1001", "C1001", "2026-12-01", None, None,
                                       utc_text(datetime.now(UTC) - timedelta(seconds=60)),
                                       (ErpShipmentLine(10000, number, variant, 1.0),))]
    report = world.resync(quiet_s=300)
    assert report.skipped_shipped == 1 and report.corrections_queued == 1 and report.shipments_read == 1
    world.send()
    assert world.physical(shipped) == before[shipped]  # still the commerce platform's own, until the flow ships
    assert world.physical(drifted) == before[drifted] + 1
    later = world.resync(quiet_s=300, now=lambda: datetime.now(UTC) + timedelta(seconds=600))
    assert later.skipped_shipped == 0 and later.corrections_queued == 1  # outside the window: the ERP's figure


def test_a_key_with_a_queued_movement_is_left_alone(world: World) -> None:
    """Kills: a resync that queues a second count over one not yet sent (or over a movement in flight), undoing
    what is still travelling. The earlier count was read an hour ago: only its status keeps the key busy."""
    sku, = _plain_skus(world, 1)
    before = world.physical(sku)
    world.erp.levels = {_item(world, sku): before + 4}
    first = world.resync(now=lambda: datetime.now(UTC) - timedelta(hours=1))
    assert first.corrections_queued == 1
    world.erp.levels = {_item(world, sku): before + 9}
    second = world.resync()
    assert second.differing == 1 and second.skipped_active == 1 and second.corrections_queued == 0
    world.send()
    assert world.physical(sku) == before + 4
    third = world.resync()
    assert third.corrections_queued == 1
    world.send()
    assert world.physical(sku) == before + 9


def test_the_running_sync_holding_the_lock(world: World) -> None:
    """Kills: a scheduled run that can never compare while the always-on sync holds the lock, or one that ignores
    the lock when asked to respect it."""
    sku, = _plain_skus(world, 1)
    world.erp.levels = {_item(world, sku): world.physical(sku) + 1}
    with sync_lock(world.engine):
        with pytest.raises(SyncBusy):
            world.resync()
        report = world.resync(beside_running_sync=True)
    assert not report.locked and report.corrections_queued == 1
