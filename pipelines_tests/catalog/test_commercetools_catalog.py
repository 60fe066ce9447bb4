"""commercetools' catalog read for the export to NewStore (`pipelines.connectors.commercetools.catalog`), against
the commercetools simulator over loopback HTTP. The oracle is the estate file the simulator was built from."""

from __future__ import annotations

import copy

import pytest

from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.catalog import read_catalog
from pipelines.defs.catalog.assets import store_pricelists
from pipelines.domain.catalog_export import plan_export
from pipelines.estate.model import estate_from_dict
from pipelines.simulators.commercetools import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    CommercetoolsSimulator,
)
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer


@pytest.fixture(scope="module")
def world():
    data = generate_estate(sizes=24, stores=3, seed=11, commerce="commercetools")
    estate = estate_from_dict(data)
    # commercetools holds one product the product master (the estate the pipeline reads) does not
    extra = copy.deepcopy(data)
    foreign = copy.deepcopy(extra["catalog"][0])
    foreign.update(product_id=999, product_number="P9999", name="Foreign Tee")
    for v in foreign["variants"]:
        v["sizes"] = [dict(s, sku=f"X{s['sku']}", size_id=s["size_id"] + 9000) for s in v["sizes"]]
    extra["catalog"].append(foreign)
    sim = CommercetoolsSimulator(estate_from_dict(extra))
    server = BackgroundServer(sim.app).start()
    client = CommercetoolsClient(server.url, server.url, estate.commercetools.project_key, DEFAULT_CLIENT_ID,
                                 DEFAULT_CLIENT_SECRET)
    yield estate, client, {s["sku"] for v in foreign["variants"] for s in v["sizes"]}
    client.close()
    server.stop()


def test_every_master_sku_comes_with_its_ean_and_its_price_in_every_price_list(world) -> None:
    """Kills: prices taken from another channel or currency, a country's price landing in another price list,
    cents read as units, EANs missing (the export would hold every SKU back), a variant dropped."""
    estate, client, _ = world
    catalog = read_catalog(client, estate)
    sizes = {s.sku: s for s in catalog.sizes}
    prices = {(p.pricelist_id, p.variant_id): p.price for p in catalog.prices}
    for sku, ref in estate.by_sku.items():
        assert sizes[sku].ean == ref.size.ean and sizes[sku].variant_id == ref.variant.variant_id
        for pl in estate.centra.pricelists:  # a price list for no country has no commercetools price
            if not pl.countries:
                assert (pl.id, ref.variant.variant_id) not in prices
                continue
            assert prices[(pl.id, ref.variant.variant_id)] == pytest.approx(ref.variant.prices[pl.id]), (sku, pl.id)
    assert {p.id for p in catalog.pricelists} == {p.id for p in estate.centra.pricelists}


def test_a_commercetools_sku_outside_the_master_is_held_back_not_sent(world) -> None:
    """Kills: SKU validation against the master skipped for commercetools (the foreign SKUs would be sent)."""
    estate, client, foreign = world
    catalog = read_catalog(client, estate)
    books = store_pricelists(estate.stores, catalog.pricelists)
    by_variant: dict[int, dict[int, float]] = {}
    for p in catalog.prices:
        by_variant.setdefault(p.variant_id, {})[p.pricelist_id] = p.price
    plan = plan_export(catalog.sizes, by_variant, books, {}, master_skus=estate.by_sku)
    assert {h.sku for h in plan.held} == foreign
    assert all(h.reasons[0] == "not_in_master" for h in plan.held)
    assert {s.sku for s in plan.to_send} == set(estate.by_sku)
