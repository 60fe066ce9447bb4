"""The stock sync against the commercetools simulator over loopback (SQLite; the crash case on PostgreSQL too).

Oracle: the simulator's inventory entries (`quantityOnStock` of the store's supply channel) against the estate's
initial stock and the units the POS events moved, and the simulator's own counters (updates of inventory entries,
the answers it gave), never the sync's ledger.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.markers import MARKER_FIELD, marker_value
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.defs.sync.jobs import stock_sync_job
from pipelines.estate import Estate
from pipelines.estate.model import estate_from_dict
from pipelines.simulators.commercetools import DEFAULT_CLIENT_ID as CLIENT_ID
from pipelines.simulators.commercetools import DEFAULT_CLIENT_SECRET as CLIENT_SECRET
from pipelines.simulators.commercetools import CommercetoolsSimulator, CommercetoolsState
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer
from pipelines.store import make_engine, migrate
from pipelines.sync import StockSync, SyncConfig
from pipelines.sync.batches import DESCRIPTION_PREFIX, Batch
from pipelines.sync.commercetools_io import CommercetoolsStockTarget
from pipelines_tests.sync.conftest import T0, count, land, receipt, sale

ONE_PASS = {"ops": {"sync_store_stock": {"config": {"window_s": 0.0}}}}
_DBS = iter(range(1, 10_000))


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so nothing in the sync catches it."""


@pytest.fixture(scope="module")
def ct_estate_dict() -> dict:
    return generate_estate(sizes=60, stores=3, seed=3, commerce="commercetools")


@pytest.fixture(scope="module")
def ct_estate(ct_estate_dict: dict) -> Estate:
    return estate_from_dict(ct_estate_dict)


@dataclass
class CtWorld:
    engine: Engine
    database_url: str
    estate: Estate
    sim: CommercetoolsSimulator
    server: BackgroundServer
    closing: ExitStack = field(default_factory=ExitStack)

    @property
    def state(self) -> CommercetoolsState:
        return self.sim.state

    @property
    def store(self):  # noqa: ANN201
        return self.estate.stores[0]

    def client(self) -> CommercetoolsClient:
        return self.closing.enter_context(CommercetoolsClient(
            self.server.url, self.server.url, self.sim.project_key, CLIENT_ID, CLIENT_SECRET, max_attempts=1,
            backoff_base_s=0.01))

    def target(self, estate: Estate | None = None, sleep: Callable[[float], None] = lambda _s: None
               ) -> CommercetoolsStockTarget:
        return CommercetoolsStockTarget(self.client(), estate or self.estate, sleep=sleep)

    def sync(self, target: CommercetoolsStockTarget | None = None, **kw: Any) -> StockSync:
        return StockSync(self.engine, self.estate, target or self.target(),
                         SyncConfig(settle_s=0, poll_s=0, batch_delay_s=None), **kw)

    def quantity(self, sku: str) -> int:
        return self.state.stock(self.store.id, sku)[0]

    def entry(self, sku: str) -> dict[str, Any]:
        entry = self.state.inventory_entry(self.store.id, sku)
        assert entry is not None
        return entry

    def initial(self, sku: str) -> int:
        return self.estate.initial_stock[self.store.newstore_node_id][sku]

    def skus(self, n: int, *, min_stock: int = 0) -> list[str]:
        return [s for s in self.estate.skus() if self.initial(s) >= min_stock][:n]

    def inventory_updates(self) -> int:
        """Changes of inventory entries the simulator committed (creates, updates, other writers)."""
        return self.state.updates["inventory"]

    def answers(self, status: int, method: str = "POST", resource: str = "inventory") -> int:
        return sum(1 for r in self.state.request_log
                   if r["status"] == status and r["method"] == method and r["resource"] == resource)

    def statuses(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(text(
                "SELECT status, COUNT(*) FROM stock_sync_movements GROUP BY status")).all())

    def exceptions(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT exception_type, sku FROM exceptions")).all()]

    def drain(self, runs: int = 8) -> None:
        """Sync runs (one pass each) until nothing waits, at most `runs`."""
        for _ in range(runs):
            self.sync().run(window_s=0)
            if set(self.statuses()) <= {"done", "superseded"}:
                return


def _database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    from pipelines_tests.pg_server import create_database

    return create_database(request.getfixturevalue("pg_server_url"), f"ct{os.getpid()}_{next(_DBS)}")


@pytest.fixture
def ct(request: pytest.FixtureRequest, tmp_path: Path, ct_estate: Estate) -> Iterator[CtWorld]:
    url = _database(request, tmp_path)
    engine = make_engine(url)
    migrate(engine)
    sim = CommercetoolsSimulator(ct_estate)
    server = BackgroundServer(sim.app).start()
    world = CtWorld(engine, url, ct_estate, sim, server)
    try:
        yield world
    finally:
        world.closing.close()
        server.stop()
        engine.dispose()


def test_store_sales_reach_the_store_entry_exactly_once(ct: CtWorld) -> None:
    """Kills: a write to the wrong supply channel (the DC's, or none), a sign error, a redelivered event applied
    twice, a count sent as a delta of the wrong base, a quantity change without the marker on the entry."""
    node = ct.store.newstore_node_id
    sold, received, counted = ct.skus(3, min_stock=2)
    dc_before = ct.state.stock(ct.estate.distribution_centre.id, sold)[0]
    event = sale(node, sold, T0, quantity=2)
    land(ct.engine, event, receipt(node, {received: 3}, T0 + timedelta(minutes=1)),
         count(node, {counted: 7}, T0 + timedelta(minutes=2)))
    report = ct.sync().run(window_s=0)
    land(ct.engine, event)  # redelivered
    ct.sync().run(window_s=0)
    assert ct.quantity(sold) == ct.initial(sold) - 2
    assert ct.quantity(received) == ct.initial(received) + 3
    assert ct.quantity(counted) == 7
    assert ct.state.stock(ct.estate.distribution_centre.id, sold)[0] == dc_before  # not the DC's entry
    assert report.applied == 3 and ct.statuses() == {"done": 3}
    entry = ct.entry(sold)  # the batch's marker, written by the update that made this version
    assert entry["custom"]["fields"][MARKER_FIELD].startswith(f"{entry['version']}:{DESCRIPTION_PREFIX}")


@pytest.mark.parametrize("ct", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_crash_after_commercetools_applied_is_found_by_its_marker_and_not_resent(ct: CtWorld) -> None:
    """The run dies after commercetools applied the update and before our commit. Kills: a recovery that resends
    (the entry would be decremented twice, two updates), a marker written in a separate request (a crash between
    the two would lose it), a lookup that reads the wrong entry."""
    sku, other = ct.skus(2, min_stock=2)
    node = ct.store.newstore_node_id
    land(ct.engine, sale(node, sku, T0))
    accepted: list[Batch] = []

    def die(batch: Batch) -> None:
        accepted.append(batch)
        raise SimulatedCrash

    updates = ct.inventory_updates()
    with pytest.raises(SimulatedCrash):
        ct.sync(after_accept=die).run(window_s=0)
    (batch,) = accepted
    assert ct.quantity(sku) == ct.initial(sku) - 1  # commercetools has it...
    assert ct.statuses() == {"in_flight": 1}  # ...we never committed
    assert ct.inventory_updates() == updates + 1

    land(ct.engine, sale(node, other, T0 + timedelta(minutes=1)))  # more trading meanwhile
    report = ct.sync().run(window_s=0)
    assert report.recovered == 1 and report.applied == 2
    assert ct.quantity(sku) == ct.initial(sku) - 1
    assert ct.quantity(other) == ct.initial(other) - 1
    assert ct.inventory_updates() == updates + 2  # the crashed batch once, the new sale once
    entry = ct.entry(sku)
    assert entry["custom"]["fields"][MARKER_FIELD] == marker_value(entry["version"], batch.description)
    assert ct.statuses() == {"done": 2}


@pytest.mark.parametrize("other_writer_adds", [0, 3])
def test_409_from_another_writer_is_resent_with_the_new_version(ct: CtWorld, other_writer_adds: int) -> None:
    """Another writer changes the entry between our read and our write (the simulator's concurrent-writer knob,
    on for exactly one update). Kills: giving up on a 409, resending with the stale version, turning the relative
    change into an absolute one computed from the stale quantity (the other writer's units would be lost)."""
    sku = ct.skus(1, min_stock=2)[0]
    node = ct.store.newstore_node_id
    land(ct.engine, sale(node, sku, T0))

    def backoff(_seconds: float) -> None:  # the adapter's pause after a 409: the other writer is done by then
        ct.state.concurrent_writer(0)

    ct.state.concurrent_writer(1.0, delta=other_writer_adds)
    updates = ct.inventory_updates()
    ct.sync(target=ct.target(sleep=backoff)).run(window_s=0)
    assert ct.answers(409) == 1
    assert ct.quantity(sku) == ct.initial(sku) + other_writer_adds - 1
    assert ct.inventory_updates() == updates + 2  # the other writer's change and ours
    assert ct.statuses() == {"done": 1}


@pytest.mark.parametrize("after_execute", [False, True])
def test_503_burst_is_retried_and_applied_exactly_once(ct: CtWorld, after_execute: bool) -> None:
    """A burst of 503 on the update (the first one, with `after_execute`, answered after commercetools applied
    it). Kills: a lost batch (never resent), a blind resend of an update that was in (decremented twice)."""
    sku = ct.skus(1, min_stock=2)[0]
    node = ct.store.newstore_node_id
    land(ct.engine, sale(node, sku, T0))
    target = ct.target()
    target.stock_view([(ct.store.centra_warehouse_id, sku)], lambda: None)  # the entry is read: next is the write
    target._ensure_marker_type()
    ct.state.fail_next(503, after_execute=after_execute)
    ct.state.fail_next(503, count=2)
    updates = ct.inventory_updates()
    first = ct.sync(target=target).run(window_s=0)
    assert first.errors and ct.answers(503) >= 1  # the write itself met the burst
    ct.drain()
    assert ct.quantity(sku) == ct.initial(sku) - 1
    assert ct.inventory_updates() == updates + 1
    assert ct.statuses() == {"done": 1}


def test_sku_outside_the_product_master_is_an_exception_and_nothing_is_written(ct: CtWorld,
                                                                               ct_estate_dict: dict) -> None:
    """The product master the adapter checks against no longer has a SKU the POS still sells. Kills: creating an
    inventory entry for an unknown SKU, a crash of the pass, the other lines held back by the culprit."""
    dropped_product = ct_estate_dict["catalog"][0]
    unknown = dropped_product["variants"][0]["sizes"][0]["sku"]
    known = next(s for s in ct.skus(10, min_stock=1) if not s.startswith(dropped_product["product_number"]))
    master = copy.deepcopy(ct_estate_dict)
    master["catalog"] = master["catalog"][1:]
    target = ct.target(estate=estate_from_dict(master))
    node = ct.store.newstore_node_id
    before = ct.entry(unknown)
    updates = ct.inventory_updates()
    land(ct.engine, sale(node, unknown, T0), sale(node, known, T0))
    report = ct.sync(target=target).run(window_s=0)
    assert ct.entry(unknown) == before  # nothing written to its entry
    assert ct.inventory_updates() == updates + 1  # the known SKU's update only
    assert ct.quantity(known) == ct.initial(known) - 1
    assert report.failed == 1 and ct.statuses() == {"done": 1, "failed": 1}
    assert ct.exceptions() == [("stock_sync_unknown_size", unknown)]


def test_dagster_stock_sync_job_writes_through_the_commercetools_target(ct: CtWorld, ct_estate_dict: dict,
                                                                        tmp_path: Path) -> None:
    """The estate file says commercetools: `stock_sync_job` picks the commercetools target (`stock_target`). Kills:
    the job writing to Centra (unreachable here) or ignoring the estate's platform, missing resource wiring."""
    estate_file = tmp_path / "estate.json"
    estate_file.write_text(json.dumps(ct_estate_dict))
    resources = {"store": StoreOfRecord(database_url=ct.database_url),
                 "estate": EstateResource(path=str(estate_file)),
                 "centra": CentraResource(base_url="http://127.0.0.1:9", token="unused"),
                 "commercetools": CommercetoolsResource(api_url=ct.server.url, client_id=CLIENT_ID,
                                                        client_secret=CLIENT_SECRET),
                 "sync_settings": SyncSettings()}
    sku = ct.skus(1, min_stock=1)[0]
    land(ct.engine, sale(ct.store.newstore_node_id, sku, T0))
    with dg.instance_for_test() as instance:
        result = stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=ONE_PASS)
    assert result.success
    assert ct.quantity(sku) == ct.initial(sku) - 1
    assert ct.statuses() == {"done": 1}


def test_devstack_on_commercetools_trades_there_and_history_syncs_the_stores(tmp_path: Path) -> None:
    """`Stack(commerce="commercetools")`: online orders go to commercetools (none to Centra), the history's stock
    sync writes every store's entries to the ground truth, and the env hands Dagster the simulator. Kills: the
    world still trading on Centra, the history sync writing to Centra, a store entry off the POS truth."""
    from pipelines.devstack import Stack

    with Stack(tmp_path / "stack", sizes=40, stores=2, seed=5, commerce="commercetools") as stack:
        stats = stack.history(0.5)
        ct = stack.commercetools.state
        online = stack.truth.query("SELECT platform, COUNT(*) FROM transactions WHERE kind = 'online_order' "
                                   "GROUP BY platform")
        assert online == [("commercetools", stats["online_orders"])] and stats["online_orders"] > 0
        assert len(ct.docs["orders"]) == stats["online_orders"] and not stack.centra.state.orders
        assert stats["synced_movements"] > 0
        assert not [c for c in stack.centra.state.stock_changes() if c["description"].startswith(DESCRIPTION_PREFIX)]
        for store in stack.estate.stores:
            node = store.newstore_node_id
            for sku in stack.estate.skus():
                want = max(0, stack.truth.expected_stock(node, sku, stack.estate.initial_stock[node][sku]))
                assert ct.stock(store.id, sku)[0] == want, (store.id, sku)
        env = stack.env()
        assert env["COMMERCETOOLS_API_URL"] == stack.commercetools_server.url
        with stack.commercetools_client() as client:
            assert client.channel_by_key(stack.estate.stores[0].id) is not None


def test_stock_view_reads_many_stores_in_one_request_and_keeps_them_apart(ct: CtWorld) -> None:
    """The ranking read: keys of several stores in one query. Kills: a key answered with another store's (or the
    DC's) entry of the same SKU, keys dropped or added, one request per store."""
    skus = ct.skus(3)
    keys = [(store.centra_warehouse_id, sku) for store in ct.estate.stores for sku in skus]
    ct.state.set_stock(ct.estate.stores[1].id, skus[0], 41)  # the stores differ for the same SKU
    target = ct.target()
    target.channel_id(keys[0][0])  # channels read first: only the stock read is counted below
    before = ct.state.request_count("GET", "inventory")
    requests: list[int] = []
    view = target.stock_view(keys, lambda: requests.append(1))
    assert ct.state.request_count("GET", "inventory") - before == len(requests) == 1
    want = {(w, sku): ct.state.stock(ct.estate.by_warehouse[w].id, sku) for w, sku in keys}
    assert view == want and view[(ct.estate.stores[1].centra_warehouse_id, skus[0])][0] == 41
