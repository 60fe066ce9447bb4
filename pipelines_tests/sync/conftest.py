"""Fixtures for the stock sync tests: a Centra simulator on loopback, POS events landed in the inbox."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from pipelines.connectors.centra import CentraClient
from pipelines.estate import Estate
from pipelines.intake.verify import parse_newstore_event
from pipelines.simulators.centra import CentraSimulator, CentraState
from pipelines.simulators.serving import BackgroundServer
from pipelines.store import make_engine
from pipelines.store.inbox import store_events
from pipelines.sync import StockSync, SyncConfig

TOKEN = "sync-test-token"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_LT = itertools.count(1_000)


@dataclass
class RateRow:
    """A row of Centra's `rateLimits` answer, as the governor observes it."""

    type: str
    interval_seconds: int
    quota: int
    remaining_quota: int


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _item(sku: str, **extra: Any) -> dict[str, Any]:
    return {"product_id": sku, "external_identifiers": {"sku": sku}, **extra}


# Payloads as NewStore sends them (pipelines/simulators/newstore/PROVENANCE.md).
def sale(node: str, sku: str, at: datetime, quantity: int = 1, ref: str | None = None) -> dict[str, Any]:
    """`order.opened` of a store sale (one item per unit, as NewStore sends them)."""
    items = [_item(sku, id=f"item-{next(_LT)}", shipping_service_level="IN_STORE_HANDOVER", status="complete",
                   quantity=1) for _ in range(quantity)]
    return {"name": "order.opened", "published_at": iso(at), "payload": {
        "id": ref or f"sale-{next(_LT)}", "channel_type": "store", "channel": node, "placed_at": iso(at),
        "price_method": "tax_included", "items": items}}


def count(node: str, quantities: dict[str, int], at: datetime, on_record: int = 0) -> dict[str, Any]:
    """`inventory_count.items_counted`: no id and no time of its own (dated by `published_at`)."""
    return {"name": "inventory_count.items_counted", "published_at": iso(at), "payload": {
        "fulfillment_location_id": node, "chunk_number": 1, "total_chunks": 1,
        "items": [{"product_id": s, "stock_on_hand": on_record, "count": q} for s, q in quantities.items()]}}


def receipt(node: str, quantities: dict[str, int], at: datetime, adjusted: bool = False) -> dict[str, Any]:
    kind = "items_adjusted" if adjusted else "items_received"
    txn = f"tx-{next(_LT)}"
    return {"name": f"inventory_transaction.{kind}", "published_at": iso(at), "payload": {
        "id": txn, "chunk_number": 1, "asn_id": f"asn-{txn}", "shipment_ref": f"shp-{txn}",
        "fulfillment_location_id": node, "processed_at": iso(at),
        "items": [{"product_id": s, "quantity": q} for s, q in quantities.items()]}}


def land(engine: Engine, *envelopes: dict[str, Any]) -> list[bool]:
    """Store POS events in the inbox as the intake would (same dedup keys, so redeliveries collapse)."""
    return store_events(engine, [parse_newstore_event(json.dumps({"tenant": "t", **e}).encode()) for e in envelopes])


def age_inbox(engine: Engine, seconds: float = 3600) -> None:
    """Pretend every inbox event arrived `seconds` ago (so the ingest cursor may pass them)."""
    when = iso(datetime.now(UTC) - timedelta(seconds=seconds))
    with engine.begin() as conn:
        conn.execute(text("UPDATE inbox_events SET received_at = :w"), {"w": when})


@dataclass
class SyncWorld:
    engine: Engine
    estate: Estate
    centra: CentraState
    server: BackgroundServer

    @property
    def store(self):  # noqa: ANN201
        return self.estate.stores[0]

    def client(self, **kw: Any) -> CentraClient:
        kw.setdefault("max_attempts", 1)
        kw.setdefault("backoff_base_s", 0.01)
        return CentraClient(self.server.url, TOKEN, **kw)

    def sync(self, config: SyncConfig | None = None, **kw: Any) -> StockSync:
        return StockSync(self.engine, self.estate, self.client(),
                         config or SyncConfig(settle_s=0, poll_s=0, batch_delay_s=None), **kw)

    def physical(self, sku: str, store: Any = None) -> int:
        return self.centra.stock_of((store or self.store).centra_warehouse_id, sku)["physical"]

    def initial(self, sku: str, store: Any = None) -> int:
        return self.estate.initial_stock[(store or self.store).newstore_node_id][sku]

    def skus(self, n: int, *, min_stock: int = 0) -> list[str]:
        node = self.store.newstore_node_id
        return [s for s in self.estate.skus() if self.estate.initial_stock[node][s] >= min_stock][:n]

    def statuses(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(text(
                "SELECT status, COUNT(*) FROM stock_sync_movements GROUP BY status")).all())


@pytest.fixture
def world(db_url: str, small_estate: Estate) -> Iterator[SyncWorld]:
    sim = CentraSimulator(small_estate, tokens=[TOKEN])
    sim.state.set_rate_limits(tier="ENTERPRISE")  # tests about rate limits set their own budget
    engine = make_engine(db_url)
    server = BackgroundServer(sim.app).start()
    try:
        yield SyncWorld(engine, small_estate, sim.state, server)
    finally:
        server.stop()
        engine.dispose()
