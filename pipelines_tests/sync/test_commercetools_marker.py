"""The commercetools stock adapter's exactly-once marker (`pipelines.sync.commercetools_io`), against the
commercetools simulator over loopback HTTP: the marker rides in the quantity's own update, names the entry version
that update made, and never removes a retailer's own custom fields. Oracle: the simulator's entries."""

from __future__ import annotations

import pytest

from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.markers import MARKER_FIELD
from pipelines.estate.model import estate_from_dict
from pipelines.simulators.commercetools import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    CommercetoolsSimulator,
)
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer
from pipelines.sync.batches import Batch
from pipelines.sync.commercetools_io import CommercetoolsStockTarget
from pipelines.sync.target import StockRejected


def _batch(batch_id: str, warehouse_id: int, operation: str, sku: str, quantity: int) -> Batch:
    plan = {sku: {"applies": [1], "absorbs": [], "watermark": None, "first": None, "last": None}}
    return Batch(batch_id, f"pipelines-stock-sync {batch_id}", warehouse_id, operation, {sku: quantity}, plan, True)


@pytest.fixture()
def world():
    estate = estate_from_dict(generate_estate(sizes=12, stores=2, seed=3, commerce="commercetools"))
    sim = CommercetoolsSimulator(estate)
    server = BackgroundServer(sim.app).start()
    client = CommercetoolsClient(server.url, server.url, estate.commercetools.project_key, DEFAULT_CLIENT_ID,
                                 DEFAULT_CLIENT_SECRET, max_attempts=1)
    yield estate, sim, client
    client.close()
    server.stop()


def _entry(client: CommercetoolsClient, sim: CommercetoolsSimulator, loc_id: str, sku: str) -> dict:
    (entry,) = client.inventory_entries(skus=[sku], channel_ids=[sim.state.channel_id(loc_id)])
    return entry


def test_the_marker_names_the_version_its_update_made_and_a_resend_finds_it(world) -> None:
    """Kills: the marker written in a second request (a crash between would lose it), a marker without the version
    (the ledger could not tie it to its message), a resend that applies again (a fresh adapter, no cache)."""
    estate, sim, client = world
    store, sku = estate.stores[0], estate.skus()[0]
    before = _entry(client, sim, store.id, sku)
    batch = _batch("m1", store.centra_warehouse_id, "remove", sku, 2)
    CommercetoolsStockTarget(client, estate).send(batch)
    after = _entry(client, sim, store.id, sku)
    assert after["quantityOnStock"] == before["quantityOnStock"] - 2
    assert after["version"] == before["version"] + 1  # quantity and marker in one update
    assert after["custom"]["fields"][MARKER_FIELD] == f"{after['version']}:{batch.description}"
    fresh = CommercetoolsStockTarget(client, estate)
    assert fresh.find_applied(batch) is not None
    fresh.send(batch)  # as after a crash: the marker says it is in
    assert _entry(client, sim, store.id, sku)["quantityOnStock"] == before["quantityOnStock"] - 2


def test_a_retailers_own_custom_type_keeps_its_fields_and_gains_the_marker(world) -> None:
    """Kills: setCustomType on an entry that has the retailer's type (it would drop their fields)."""
    estate, sim, client = world
    store, sku = estate.stores[1], estate.skus()[1]
    client.post("/types", {"key": "retailer-inventory", "name": {"en": "Retailer"}, "resourceTypeIds": [
        "inventory-entry"], "fieldDefinitions": [{"name": "binLocation", "label": {"en": "Bin"}, "required": False,
                                                  "type": {"name": "String"}, "inputHint": "SingleLine"}]})
    entry = _entry(client, sim, store.id, sku)
    client.update_inventory_entry(entry["id"], entry["version"], [
        {"action": "setCustomType", "type": {"typeId": "type", "key": "retailer-inventory"},
         "fields": {"binLocation": "A-12"}}])
    CommercetoolsStockTarget(client, estate).send(_batch("m2", store.centra_warehouse_id, "add", sku, 3))
    after = _entry(client, sim, store.id, sku)
    assert after["quantityOnStock"] == entry["quantityOnStock"] + 3
    assert after["custom"]["fields"]["binLocation"] == "A-12"
    assert after["custom"]["fields"][MARKER_FIELD].endswith("pipelines-stock-sync m2")


def test_a_sku_outside_the_master_is_refused_before_any_write(world) -> None:
    """Kills: an inventory entry created for a SKU the product master does not know."""
    estate, sim, client = world
    store = estate.stores[0]
    writes = sim.state.updates["inventory"]
    with pytest.raises(StockRejected) as refused:
        CommercetoolsStockTarget(client, estate).send(_batch("m3", store.centra_warehouse_id, "add", "NOPE-1", 1))
    assert refused.value.unknown == {"NOPE-1"}
    assert not list(client.inventory_entries(skus=["NOPE-1"])) and sim.state.updates["inventory"] == writes
