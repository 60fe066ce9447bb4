"""The ERP datasets materialised for real (`dg.materialize`) against the Business Central simulator (through the
production adapter `BusinessCentralErp`) and the Centra simulator, on SQLite and PostgreSQL. The oracle is the
simulators' own state: the orders and shipments posted in the ERP, the items and their inventory, the shipments
Centra holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipelines.defs.erp.datasets import erp_dataset_checks, erp_document_assets, erp_snapshot_assets
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
)
from pipelines.estate import load_estate
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines.simulators.centra import CentraState
from pipelines.simulators.erp_world import seed_company
from pipelines.simulators.estate_gen import generate_estate
from pipelines.store import make_engine
from pipelines.store.partitions import read_partition
from pipelines_tests.centra_fixtures import TOKEN, running_centra

DAY, BEFORE, AFTER = "2026-12-01", "2026-11-30", "2026-12-02"
TABLES = ("erp_sales_orders", "erp_shipments", "erp_stock_snapshot", "erp_items")


def materialize(resources: dict[str, Any]) -> list[dg.ExecuteInProcessResult]:
    """The documents and the snapshots, each group as its job runs it (daily_datasets_job, snapshots_job), with
    their schema checks; every check passes."""
    results = []
    for group in (erp_document_assets, erp_snapshot_assets):
        keys = {k for a in group for k in a.keys}
        checks = [c for c in erp_dataset_checks if {k.asset_key for k in c.check_keys} <= keys]
        result = dg.materialize([*group, *checks], partition_key=DAY, resources=resources)
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == 2 and all(e.passed for e in evaluations), evaluations
        results.append(result)
    return results


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An estate with an ERP, Business Central seeded from it, and Centra; four web orders in both systems:
    A shipped in the ERP and in Centra (with the fulfilment flow's marker), B shipped in the ERP only, C ordered the
    day before and shipped on the day (Centra shipped it without a marker), D shipped the day after."""
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(generate_estate(sizes=24, stores=2, seed=11, erp=True)))
    est = load_estate(path)
    mapping = est.erp
    assert mapping is not None
    clock = Clock()
    bc = BusinessCentralState(clock=clock)
    seeded = seed_company(bc, est)
    centra = CentraState(est)
    dc_stock = est.initial_stock[est.distribution_centre.newstore_node_id]
    skus = [s for s in est.skus() if not mapping.is_bundle(s) and dc_stock.get(s, 0) >= 3][:4]
    market = next(m for m in est.centra.markets if m.id in seeded.customers)
    currency = est.pricelists[market.pricelist_id].currency
    tax_code = next(iter(mapping.tax_codes.values()))
    orders: dict[str, dict[str, Any]] = {}
    plan = {"A": (skus[0], 2, 299.0, 50.0, DAY), "B": (skus[1], 1, 100.0, 0.0, DAY),
            "C": (skus[2], 1, 80.0, 0.0, BEFORE), "D": (skus[3], 3, 10.0, 0.0, DAY)}
    for key, (sku, qty, price, discount, order_date) in plan.items():
        number = int(centra.place_order(market.id, [(sku, qty)], email=f"{key}@example.com")["number"])
        centra.confirm_order(number)
        orders[key] = bc.create_sales_order(seeded.company_id, {
            "externalDocumentNumber": str(number), "customerNumber": seeded.customers[market.id],
            "currencyCode": mapping.currency(currency), "orderDate": order_date, "pricesIncludeTax": True,
            "salesOrderLines": [{"lineType": "Item", "lineObjectNumber": sku, "quantity": qty, "unitPrice": price,
                                 "discountAmount": discount, "taxCode": tax_code}]}) | {"centra": number}
    shipped = {k: bc.ship_order(seeded.company_id, orders[k]["id"], package_tracking_number=f"TRK-{k}",
                                shipping_agent_code="DHL") for k in ("A", "B", "C")}
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    shipped["D"] = bc.ship_order(seeded.company_id, orders["D"]["id"], package_tracking_number="TRK-D",
                                 shipping_agent_code="UPS")
    bc.set_inventory(seeded.company_id, skus[0], 4242)  # a count in the ERP
    for key, marker in (("A", f"erp:{shipped['A']['number']}"), ("C", None)):
        rec = centra.create_shipment(orders[key]["centra"], is_good_to_go=True, additional_message=marker)
        centra.complete_shipment(rec.id, carrier="DHL", tracking_number=f"TRK-{key}")
    centra.create_shipment(orders["B"]["centra"], additional_message=f"erp:{shipped['B']['number']}")  # not completed
    sim = BusinessCentralSimulator(bc).start()
    try:
        with running_centra(centra) as server:
            yield {"estate_file": path, "estate": est, "bc": bc, "company": seeded.company_id, "orders": orders,
                   "shipped": shipped, "skus": skus, "centra_url": server.url,
                   "businesscentral": BusinessCentralResource(
                       api_url=sim.url, client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET,
                       company_id=seeded.company_id)}
    finally:
        sim.stop()


def _resources(world: dict[str, Any], db_url: str, businesscentral: BusinessCentralResource) -> dict[str, Any]:
    return {"store": StoreOfRecord(database_url=db_url), "estate": EstateResource(path=str(world["estate_file"])),
            "businesscentral": businesscentral, "centra": CentraResource(base_url=world["centra_url"], token=TOKEN),
            "commercetools": CommercetoolsResource()}


def test_erp_datasets_land_what_the_erp_holds(world: dict[str, Any], db_url: str) -> None:
    """Kills: orders of another order date landed (C), shipments of another posting day landed (D), a shipment's
    value at list price instead of the line's discounted amount (A: 2 x 299.00 - 50.00 = 548.00), the value of a
    shipment whose order is of an earlier day lost (C), in_commerce from an uncompleted Centra shipment (B) or
    without the units fall-back (C: completed without a marker), tracking and carrier lost, the stock not the ERP's
    (the 4242 count, the shipped units gone) or a bundle's stock landed, items missing."""
    assert all(r.success for r in materialize(_resources(world, db_url, world["businesscentral"])))
    engine = make_engine(db_url)
    orders, shipped, bc, company = world["orders"], world["shipped"], world["bc"], world["company"]

    got_orders = read_partition(engine, "erp_sales_orders", DAY).set_index("order_number")
    assert sorted(got_orders.index) == sorted(orders[k]["number"] for k in ("A", "B", "D"))
    truth = {o["number"]: o for o in bc.company(company).sets["salesOrders"].values()}
    for number, row in got_orders.iterrows():
        assert (row["external_ref"], float(row["total_including_tax"]), float(row["total_tax"])) == \
            (truth[number]["externalDocumentNumber"], truth[number]["totalAmountIncludingTax"],
             truth[number]["totalTaxAmount"])
    a = got_orders.loc[orders["A"]["number"]]
    assert (float(a["total_including_tax"]), float(a["discount_amount"]), int(a["line_count"])) == (548.0, 50.0, 1)

    ships = read_partition(engine, "erp_shipments", DAY).set_index("shipment_number")
    by_key = {k: ships.loc[shipped[k]["number"]] for k in ("A", "B", "C")}
    assert len(ships) == 3
    got = {k: (int(r["units"]), float(r["value"]), bool(r["in_commerce"]), r["external_ref"], r["tracking_number"],
               r["carrier"]) for k, r in by_key.items()}
    assert got == {"A": (2, 548.0, True, str(orders["A"]["centra"]), "TRK-A", "DHL"),
                   "B": (1, 100.0, False, str(orders["B"]["centra"]), "TRK-B", "DHL"),
                   "C": (1, 80.0, True, str(orders["C"]["centra"]), "TRK-C", "DHL")}

    est = world["estate"]
    stock = read_partition(engine, "erp_stock_snapshot", DAY)
    inventory = {i["number"]: int(i["inventory"]) for i in bc.company(company).sets["items"].values()}
    assert dict(zip(stock["sku"], stock["on_hand"].astype(int), strict=True)) == \
        {s: inventory[s] for s in est.skus() if not est.erp.is_bundle(s)}
    assert inventory[world["skus"][0]] == 4242
    assert not set(stock["sku"]) & set(est.erp.bundles)
    items = read_partition(engine, "erp_items", DAY)
    assert sorted(items["number"]) == sorted(inventory) and items["variant_code"].isna().all()


def test_without_business_central_nothing_is_landed(world: dict[str, Any], db_url: str) -> None:
    """Kills: an unconfigured run that fails (the assets are always defined), or one that writes an empty day over
    what an earlier run landed; each says why in its metadata."""
    resources = _resources(world, db_url, world["businesscentral"])
    assert all(r.success for r in materialize(resources))
    engine = make_engine(db_url)
    before = {t: len(read_partition(engine, t, DAY)) for t in TABLES}
    results = materialize({**resources, "businesscentral": BusinessCentralResource()})
    assert all(r.success for r in results)
    assert {t: len(read_partition(engine, t, DAY)) for t in TABLES} == before and all(before.values())
    events = [m for r in results for m in r.get_asset_materialization_events()]
    assert sorted(m.asset_key.path[-1] for m in events) == sorted(TABLES)
    for mat in events:
        md = mat.materialization.metadata
        assert md["erp_configured"].value is False and "BUSINESSCENTRAL_API_URL" in md["reason"].value


def test_a_range_of_days_is_read_once_and_written_per_day(world: dict[str, Any], db_url: str) -> None:
    """A backfill of two days (one run, `BackfillPolicy.single_run()`): each order lands on its own order date and
    each shipment on its posting date. Kills: the range's documents all written to one day, or a day's partition
    replaced with another day's rows."""
    tags = {"dagster/asset_partition_range_start": BEFORE, "dagster/asset_partition_range_end": DAY}
    result = dg.materialize(erp_document_assets, tags=tags, resources=_resources(world, db_url,
                                                                                 world["businesscentral"]))
    assert result.success
    engine = make_engine(db_url)
    orders, shipped = world["orders"], world["shipped"]
    numbers = lambda t, d, c: sorted(read_partition(engine, t, d)[c])  # noqa: E731
    assert numbers("erp_sales_orders", BEFORE, "order_number") == [orders["C"]["number"]]
    assert numbers("erp_sales_orders", DAY, "order_number") == sorted(orders[k]["number"] for k in "ABD")
    assert numbers("erp_shipments", BEFORE, "shipment_number") == []
    assert numbers("erp_shipments", DAY, "shipment_number") == sorted(shipped[k]["number"] for k in "ABC")


def test_erp_landed_reads_the_instance(world: dict[str, Any], db_url: str) -> None:
    """The reconciliation's test of a landed ERP day: a materialised partition is landed, another day is not, and a
    run without Business Central (it lands nothing) is not. Kills: an unconfigured run's materialisation taken as
    evidence (the ERP rules would judge an empty ERP: every order missing)."""
    from pipelines.defs.reconciliation.assets import erp_landed

    resources = _resources(world, db_url, world["businesscentral"])
    with dg.instance_for_test() as instance:
        assert dg.materialize(erp_document_assets, partition_key=DAY, resources=resources, instance=instance).success
        assert erp_landed(instance, "erp_sales_orders", DAY) and erp_landed(instance, "erp_shipments", DAY)
        assert not erp_landed(instance, "erp_sales_orders", BEFORE)
        assert not erp_landed(instance, "erp_stock_snapshot", DAY)
    with dg.instance_for_test() as instance:
        assert dg.materialize(erp_document_assets, partition_key=DAY, instance=instance,
                              resources={**resources, "businesscentral": BusinessCentralResource()}).success
        assert not erp_landed(instance, "erp_sales_orders", DAY)


def test_reconciliation_judges_the_landed_erp_day(world: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real reconciliation run with Business Central configured (the settings, as the definitions read them):
    the ERP shipment Centra does not show (B, completed nowhere) is `erp_shipment_not_in_commerce` at its 100.00,
    the ones Centra shows are not; the ERP datasets not landed for the day are evidence notes, not findings. Kills:
    the reconciliation asset not passing the ERP switch or the landed test to the loader, in_commerce ignored."""
    from pipelines.defs.reconciliation.assets import reconciliation_findings
    from pipelines.defs.resources import NewStoreResource, ReconciliationSettings
    from pipelines.store import migrate

    url = f"sqlite:///{tmp_path / 'recon.sqlite'}"
    migrate(make_engine(url))
    bc = world["businesscentral"]
    monkeypatch.setenv("BUSINESSCENTRAL_API_URL", bc.api_url)
    monkeypatch.setenv("BUSINESSCENTRAL_CLIENT_ID", bc.client_id)
    monkeypatch.setenv("BUSINESSCENTRAL_CLIENT_SECRET", bc.client_secret)
    resources = {**_resources(world, url, bc), "reconciliation_settings": ReconciliationSettings(),
                 "newstore": NewStoreResource(base_url="http://127.0.0.1:9", tenant="t", client_id="c",
                                              client_secret="s")}
    with dg.instance_for_test() as instance:
        assert dg.materialize(erp_document_assets, partition_key=DAY, resources=resources, instance=instance).success
        assert dg.materialize([reconciliation_findings], partition_key=DAY, resources=resources,
                              instance=instance).success
    engine = make_engine(url)
    findings = read_partition(engine, "reconciliation_findings", DAY)
    not_shown = findings[findings["finding_type"] == "erp_shipment_not_in_commerce"]
    assert len(not_shown) == 1 and float(not_shown["value_at_risk"].iloc[0]) == 100.0
    notes = " ".join(read_partition(engine, "reconciliation_evidence", DAY)["note"])
    assert all(a in notes for a in ("erp_stock_snapshot", "erp_items", "erp_store_sales"))
    assert "erp_sales_orders" not in notes and "dataset erp_shipments" not in notes
